#!/usr/bin/env bash
# Packs build-image/vmlinuz + initramfs.cpio.gz into a bootable disk, without
# root, loop devices or mounts (called by image/build.sh):
#   spamsink.efi  a unified kernel image (systemd's EFI stub + kernel +
#                 initramfs + command line), unsigned: Secure Boot off
#   disk.raw      MBR, one active FAT16 partition of type EF at 1 MiB holding
#                 syslinux (BIOS) and EFI/BOOT/BOOTX64.EFI (UEFI)
#   disk.qcow2    the same disk for qemu / libvirt / OpenStack
# Usage: image/mkdisk.sh [--out DIR] [--append ARGS]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$(dirname "$here")/build-image
append=
while (($#)); do
	case "$1" in
	--out) out=$2; shift ;;
	--append) append=$2; shift ;;
	*) echo "mkdisk.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
die() { echo "mkdisk.sh: error: $*" >&2; exit 1; }

stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
mbr=/usr/lib/syslinux/mbr/mbr.bin
for f in "$stub" "$mbr" "$out/vmlinuz" "$out/initramfs.cpio.gz"; do
	[[ -f $f ]] || die "$f missing (scripts/setup.sh installs systemd-boot-efi, syslinux; image/build.sh makes the rest)"
done
for tool in objcopy mkfs.fat mcopy mmd syslinux sfdisk qemu-img; do
	command -v "$tool" >/dev/null || die "$tool not found (run scripts/setup.sh as root)"
done
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || echo 1700000000)}
# mtools takes file times from SOURCE_DATE_EPOCH; keep its config out of the way
export MTOOLS_SKIP_CHECK=1 MTOOLSRC=/dev/null

# console=ttyS0 last: /dev/console (spamsink's and init's messages) is the
# serial port, which qemu -nographic and the clouds' serial logs show.
# panic=10: a crashed appliance reboots by itself.
cmdline="console=tty0 console=ttyS0,115200 quiet panic=10${append:+ $append}"
tmp=$(mktemp -d "$out/mkdisk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---- the UKI: PE sections at the addresses systemd-stub 252 expects ----
printf 'NAME="spamsink appliance"\nID=spamsink\n' >"$tmp/osrel"
printf '%s' "$cmdline" >"$tmp/cmdline"
ksize=$(stat -c %s "$out/vmlinuz")
((ksize < 0x1000000)) || die "kernel larger than the 16 MiB UKI slot"
objcopy \
	--add-section .osrel="$tmp/osrel" --change-section-vma .osrel=0x20000 \
	--add-section .cmdline="$tmp/cmdline" --change-section-vma .cmdline=0x30000 \
	--add-section .linux="$out/vmlinuz" --change-section-vma .linux=0x2000000 \
	--add-section .initrd="$out/initramfs.cpio.gz" --change-section-vma .initrd=0x3000000 \
	"$stub" "$tmp/spamsink.efi"
# reproducible: objcopy stamps the PE header with the time of day
pe=$(od -An -tu4 -j 60 -N 4 "$tmp/spamsink.efi" | tr -d ' ')
e=$SOURCE_DATE_EPOCH
# shellcheck disable=SC2059 # the format is the four bytes, as octal escapes
printf "$(printf '\\%03o' $((e & 255)) $(((e >> 8) & 255)) $(((e >> 16) & 255)) $(((e >> 24) & 255)))" |
	dd of="$tmp/spamsink.efi" bs=1 seek=$((pe + 8)) conv=notrunc status=none
dd if=/dev/zero of="$tmp/spamsink.efi" bs=1 seek=$((pe + 88)) count=4 conv=notrunc status=none

# ---- the FAT partition ----
cat >"$tmp/syslinux.cfg" <<EOF
SERIAL 0 115200
DEFAULT spamsink
PROMPT 0
TIMEOUT 0
LABEL spamsink
  LINUX /vmlinuz
  INITRD /initrd.gz
  APPEND $cmdline
EOF
need=$(($(stat -c %s "$out/vmlinuz") + $(stat -c %s "$out/initramfs.cpio.gz") + $(stat -c %s "$tmp/spamsink.efi")))
part_mib=$(((need * 12 / 10) / 1048576 + 8))
((part_mib >= 32)) || part_mib=32
part=$tmp/part.img
truncate -s "${part_mib}M" "$part"
# no label (mkfs.fat stamps it with the time of day), fixed volume id
mkfs.fat -F 16 -i 5a4d5053 "$part" >/dev/null
mmd -i "$part" ::/EFI ::/EFI/BOOT
mcopy -i "$part" "$tmp/spamsink.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$part" "$out/vmlinuz" ::/vmlinuz
mcopy -i "$part" "$out/initramfs.cpio.gz" ::/initrd.gz
mcopy -i "$part" "$tmp/syslinux.cfg" ::/syslinux.cfg
syslinux --install "$part"

# ---- the disk: MBR boot code + partition table + the partition at 1 MiB ----
rm -f "$out/disk.raw" # truncate would keep an old file's bytes
truncate -s $((part_mib + 1))M "$out/disk.raw"
printf 'label: dos\nlabel-id: 0x5a4d5053\nstart=2048, type=ef, bootable\n' | sfdisk -q "$out/disk.raw"
dd if="$mbr" of="$out/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$part" of="$out/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$out/disk.qcow2"
qemu-img convert -q -f raw -O qcow2 "$out/disk.raw" "$out/disk.qcow2"
mv "$tmp/spamsink.efi" "$out/spamsink.efi"
