#!/usr/bin/env bash
# Builds the spamsink appliance from Debian packages, without root:
#   build-image/vmlinuz            Debian's cloud kernel, from its .deb (not installed)
#   build-image/initramfs.cpio.gz  busybox-static, /init, virtio (+cloud NIC)
#                                  modules, spamsink, e2fsprogs' mke2fs and
#                                  e2fsck, and their shared libraries; libpq
#                                  is spamsink's stub (no PostgreSQL store in
#                                  the VM: libpq's libraries would not fit
#                                  96 MB); xz-compressed (gzip with --gzip)
#   build-image/disk.raw, disk.qcow2, spamsink.efi   (unless --no-disk)
#                                  a BIOS+UEFI bootable disk (image/mkdisk.sh)
# Then `image/run.sh` boots it. See docs/DEPLOY.md.
#
# Usage: image/build.sh [--bin FILE] [--out DIR] [--no-disk]
#          [--kernel-deb FILE] [--flavour cloud|generic] [--append ARGS] [--vmlinux]
#          [--postgres | --libpq-stub FILE] [--gzip]
#   --bin FILE        the spamsink binary (default: build/spamsink)
#   --out DIR         output directory (default: build-image)
#   --no-disk         only kernel + initramfs
#   --kernel-deb FILE a linux-image .deb to use instead of downloading one
#   --flavour F       Debian kernel flavour: cloud (default; LZ4, boots in ~3 s
#                     under emulation) or generic (XZ, all drivers)
#   --append ARGS     extra kernel arguments baked into the disk image's boot
#                     entries (e.g. spamsink.token=... spamsink.data=/dev/vdb)
#   --vmlinux         also extract the uncompressed ELF kernel (Firecracker)
#   --libpq-stub FILE the libpq.so.5 stub put in place of libpq (default:
#                     appliance/libpq.so.5 beside the binary, from the build;
#                     a binary built with -DSPAMSINK_POSTGRES=OFF needs none)
#   --postgres        keep Debian's libpq and its libraries (the PostgreSQL
#                     store in the VM; it then needs 128 MB or more)
#   --gzip            gzip the initramfs instead of xz (faster to unpack,
#                     ~3 MB larger: more RAM while the kernel unpacks it)
# Environment: SOURCE_DATE_EPOCH (default: the last commit's time) makes the
# initramfs and the disk reproducible bit for bit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
bin=${SPAMSINK_BIN:-$repo/build/spamsink}
out=$repo/build-image
disk=1 kernel_deb='' flavour=cloud append='' want_vmlinux=0 libpq_stub='' postgres=0 compress=xz

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
while (($#)); do
	case "$1" in
	--bin) bin=$2; shift ;;
	--out) out=$2; shift ;;
	--no-disk) disk=0 ;;
	--kernel-deb) kernel_deb=$2; shift ;;
	--flavour) flavour=$2; shift ;;
	--append) append=$2; shift ;;
	--vmlinux) want_vmlinux=1 ;;
	--libpq-stub) libpq_stub=$2; shift ;;
	--postgres) postgres=1 ;;
	--gzip) compress=gzip ;;
	-h | --help) usage; exit 0 ;;
	*) echo "build.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

say() { echo "build.sh: $*"; }
die() { echo "build.sh: error: $*" >&2; exit 1; }
t0=$(date +%s.%N)

for tool in busybox cpio gzip xz dpkg-deb apt-get apt-cache strings ldd mke2fs e2fsck; do
	command -v "$tool" >/dev/null || die "$tool not found (run scripts/setup.sh as root)"
done
busybox_bin=$(command -v busybox)
file -L "$busybox_bin" 2>/dev/null | grep -q 'statically linked' ||
	die "$busybox_bin is not static: apt-get install busybox-static (it replaces busybox)"

[[ -x $bin && -s $bin ]] || die "no spamsink binary at $bin (or it is being linked): build it first (cmake --build build) or pass --bin FILE"
bin=$(realpath "$bin")
# libpq: the stub from the same build, unless --postgres
if ((!postgres)) && ldd "$bin" 2>/dev/null | grep -q 'libpq\.so\.5 =>'; then
	[[ -n $libpq_stub ]] || libpq_stub=$(dirname "$bin")/appliance/libpq.so.5
	[[ -f $libpq_stub ]] || die "no libpq stub at $libpq_stub (build the target spamsink_libpq_stub, pass --libpq-stub FILE, or --postgres to keep libpq)"
	libpq_stub=$(realpath "$libpq_stub")
else
	libpq_stub=''
fi

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 1700000000)}
mkdir -p "$out"
out=$(realpath "$out")
cache=$out/cache work=$out/work
mkdir -p "$cache" "$work"

# ---- 1. the kernel .deb: resolved at build time, downloaded, logged ----
if [[ -z $kernel_deb ]]; then
	case "$flavour" in
	cloud) meta=linux-image-cloud-amd64 cached='linux-image-[0-9]*-cloud-amd64_*.deb' ;;
	generic) meta=linux-image-amd64 cached='linux-image-[0-9]*[0-9]-amd64_*.deb' ;;
	*) die "--flavour must be cloud or generic" ;;
	esac
	fetch_kernel() {
		pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
		[[ -n $pkg ]] || return 1
		ver=$(apt-cache policy "$pkg" | awk '/Candidate:/{print $2}')
		kernel_deb=$cache/${pkg}_${ver//:/%3a}_amd64.deb
		[[ -f $kernel_deb ]] && return 0
		say "downloading $pkg $ver"
		# apt-get download writes to the current directory; as root it warns
		# that _apt cannot write there (harmless)
		(cd "$cache" && { apt-get download -q "$pkg=$ver" 2>&1 | grep -v "^W: Download is performed unsandboxed" || :; })
		[[ -f $kernel_deb ]]
	}
	if ! fetch_kernel; then
		# stale package lists: Debian's mirror keeps only the newest kernel ABI
		if [[ $(id -u) == 0 ]]; then
			say "refreshing the package lists (apt-get update)"
			apt-get update -qq || true
			fetch_kernel || true
		fi
	fi
	if [[ ! -f ${kernel_deb:-} ]]; then
		kernel_deb=$(find "$cache" -maxdepth 1 -name "$cached" | sort -V | tail -n 1)
		[[ -n $kernel_deb ]] || die "cannot resolve or download $meta (apt-get update as root?)"
		say "warning: using the cached $(basename "$kernel_deb")"
	fi
fi
kernel_deb=$(realpath "$kernel_deb")
kdeb_sha=$(sha256sum "$kernel_deb" | cut -d' ' -f1)
say "kernel package $(basename "$kernel_deb") sha256 $kdeb_sha"

kx=$work/kernel
if [[ ! -f $kx/.sha256 || $(cat "$kx/.sha256") != "$kdeb_sha" ]]; then
	rm -rf "$kx"
	mkdir -p "$kx"
	dpkg-deb --fsys-tarfile "$kernel_deb" |
		tar -x -C "$kx" --wildcards './boot/vmlinuz-*' './boot/config-*' './lib/modules/*'
	echo "$kdeb_sha" >"$kx/.sha256"
fi
vmlinuz=$(find "$kx/boot" -name 'vmlinuz-*' | head -n 1)
kver=${vmlinuz##*/vmlinuz-}
moddir=$kx/lib/modules/$kver
[[ -d $moddir ]] || die "no modules for $kver in $kernel_deb"
cp "$vmlinuz" "$out/vmlinuz"
cp "$kx/boot/config-$kver" "$out/kernel.config"

# ---- 2. modules: the list plus their dependencies, in load order ----
declare -A ko_path=() ko_done=()
while IFS= read -r f; do
	n=$(basename "$f" .ko)
	ko_path[${n//-/_}]=$f
done < <(find "$moddir" -name '*.ko')
order=()
add_module() {
	local key=${1//-/_} deps d
	[[ -n ${ko_done[$key]:-} ]] && return 0
	[[ -n ${ko_path[$key]:-} ]] || die "module $1 not in $kver (built in? then drop it from image/modules.list)"
	ko_done[$key]=1
	deps=$(strings "${ko_path[$key]}" | sed -n 's/^depends=//p' | head -n 1)
	for d in ${deps//,/ }; do add_module "$d"; done
	order+=("$key")
}
while read -r m; do
	m=${m%%#*}
	m=${m//[[:space:]]/}
	[[ -n $m ]] && add_module "$m"
done <"$here/modules.list"

# ---- 3. the initramfs tree ----
stage=$work/stage
rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib/modules,proc,sys,dev,run,tmp,root,var/lib/spamsink,etc}
cp -a "$here/rootfs/." "$stage/"
cp "$busybox_bin" "$stage/bin/busybox"
for a in $("$busybox_bin" --list); do
	[[ $a == busybox || -e $stage/bin/$a ]] || ln -s busybox "$stage/bin/$a"
done
for m in "${order[@]}"; do
	cp "${ko_path[$m]}" "$stage/lib/modules/$m.ko"
done
printf '%s\n' "${order[@]}" >"$stage/lib/modules/modules.order"

# copy_libs FILE: every shared library FILE loads, at the same path. With a
# libpq stub, ldd resolves libpq.so.5 to it (LD_LIBRARY_PATH), so that
# libpq's own libraries are left out; the stub goes where libpq would be.
copy_libs() {
	local -a env=()
	[[ -n $libpq_stub ]] && env=(LD_LIBRARY_PATH="$(dirname "$libpq_stub")")
	env "${env[@]}" ldd "$1" >/dev/null 2>&1 || return 0 # static
	while read -r lib; do
		local dest=$lib
		[[ -n $libpq_stub && $lib == "$(dirname "$libpq_stub")/"* ]] &&
			dest=/lib/x86_64-linux-gnu/${lib##*/}
		[[ -e $stage$dest ]] && continue
		mkdir -p "$stage$(dirname "$dest")"
		cp -L "$lib" "$stage$dest"
	done < <(env "${env[@]}" ldd "$1" | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}')
}
# the binary without its debug info, plus every shared library it loads
objcopy --strip-debug --strip-unneeded "$bin" "$stage/usr/bin/spamsink"
copy_libs "$bin"
chmod 0755 "$stage/usr/bin/"*
# e2fsprogs for the data disk: busybox's mke2fs makes only ext2 and busybox has
# no fsck. /init calls them by full path (/bin/mke2fs is busybox's applet).
for tool in mke2fs e2fsck; do
	src=$(command -v "$tool") || die "$tool not found (apt-get install e2fsprogs)"
	cp -L "$src" "$stage/usr/sbin/$tool"
	chmod 0755 "$stage/usr/sbin/$tool"
	copy_libs "$src"
done
# mke2fs's feature sets per type (ext4: extent, huge_file, ...)
cp /etc/mke2fs.conf "$stage/etc/mke2fs.conf"
# e2fsck refuses to check a device it cannot prove unmounted
ln -sf /proc/mounts "$stage/etc/mtab"
# glibc needs no ld.so.cache: it searches /lib/x86_64-linux-gnu by default
chmod 1777 "$stage/tmp"
chmod 0700 "$stage/root"

find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
# xz as the kernel wants it (crc32, a 1 MiB dictionary: the kernel's
# decompressor has no room for xz's default 8-64 MiB in a 96 MB VM). The
# file keeps its name (the kernel and boot loaders go by its content).
if [[ $compress == xz ]]; then
	squeeze=(xz --check=crc32 '--lzma2=preset=9,dict=1MiB' -T1)
else
	squeeze=(gzip -9 -n)
fi
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
	cpio -o -H newc -R 0:0 --reproducible --quiet) | "${squeeze[@]}" >"$out/initramfs.cpio.gz.tmp"
mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"

# ---- 4. optional: ELF vmlinux for Firecracker / PVH boots ----
if ((want_vmlinux)); then
	off=$(grep -obUaP '\x02\x21\x4c\x18' "$vmlinuz" | head -n 1 | cut -d: -f1 || true)
	if [[ -n $off ]]; then
		tail -c +$((off + 1)) "$vmlinuz" | lz4 -dc >"$out/vmlinux" 2>/dev/null || true
	else
		off=$(grep -obUaP '\xfd\x37\x7a\x58\x5a\x00' "$vmlinuz" | head -n 1 | cut -d: -f1)
		tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream >"$out/vmlinux" 2>/dev/null || true
	fi
	file "$out/vmlinux" | grep -q ELF || die "could not extract vmlinux from $vmlinuz"
fi

{
	echo "kernel_package=$(basename "$kernel_deb")"
	echo "kernel_sha256=$kdeb_sha"
	echo "kernel_version=$kver"
	echo "busybox=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null)"
	echo "e2fsprogs=$(dpkg-query -W -f='${Version}' e2fsprogs 2>/dev/null)"
	echo "spamsink=$bin"
	echo "spamsink_version=$("$bin" --version 2>&1 | head -n 1 || true)"
	if [[ -n $libpq_stub ]]; then
		echo "libpq=stub $(sha256sum "$libpq_stub" | cut -d' ' -f1)"
	elif ldd "$bin" | grep -q 'libpq\.so'; then
		echo "libpq=debian"
	else
		echo "libpq=none"
	fi
	echo "initramfs_compression=$compress"
	echo "modules=${order[*]}"
	echo "source_date_epoch=$SOURCE_DATE_EPOCH"
} >"$out/manifest.txt"

# ---- 5. the disk image ----
if ((disk)); then
	"$here/mkdisk.sh" --out "$out" --append "$append"
fi

say "kernel $kver: $out/vmlinuz ($(stat -c %s "$out/vmlinuz") bytes)"
say "initramfs: $out/initramfs.cpio.gz ($(stat -c %s "$out/initramfs.cpio.gz") bytes, ${#order[@]} modules)"
((disk)) && say "disk: $out/disk.raw ($(stat -c %s "$out/disk.raw") bytes), $out/disk.qcow2, $out/spamsink.efi"
say "done in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s; boot it with image/run.sh"
