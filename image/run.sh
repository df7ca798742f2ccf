#!/usr/bin/env bash
# Boots the spamsink appliance built by image/build.sh under qemu.
#
#   image/run.sh                      local trial: SMTP on 127.0.0.1:2525 and
#                                     the API on 127.0.0.1:8025 (user networking)
#   image/run.sh --net bridge:br0     real use: the VM on the LAN bridge br0
#                                     (DHCP, or --append spamsink.ip=ADDR/PFX,GW)
#   image/run.sh --net tap:tap0       real use: an existing tap device
#
# The console is this terminal (Ctrl-A X quits qemu at once, Ctrl-A C gives
# the qemu monitor, where `system_powerdown` shuts spamsink down cleanly).
#
# Options:
#   --smtp-port P    host port forwarded to the VM's port 25 (default 2525;
#                    ports below 1024 need root)
#   --api-port P     host port forwarded to the VM's API port 8025 (default
#                    8025; 0: none)
#   --bind ADDR      host address of the forwards (default 127.0.0.1)
#   --net MODE       user (default) | tap:IFNAME | bridge:BRIDGE
#   --mac MAC        the VM's MAC address (give each bridged VM its own)
#   --boot HOW       kernel (default: -kernel/-initrd) | bios | uefi (the disk)
#   --data FILE      disk for the ledger, so it survives reboots; created
#                    when missing (256 MiB, sparse, blank: the VM formats
#                    it ext4 at its first boot)
#   --config FILE    a spamsink.toml handed to the VM (qemu fw_cfg); it
#                    replaces the generated config entirely
#   --token-file F   the API bearer token, from the file F (one line), handed
#                    to the VM through fw_cfg opt/spamsink/token; never on a
#                    command line. Without it the API has no token and the
#                    generated config keeps it on the VM's 127.0.0.1
#   --token TOKEN    the same, from the argument (visible in ps until qemu
#                    starts; prefer --token-file)
#   --api-cert FILE, --api-key FILE   the API's TLS certificate and key (PEM,
#                    fw_cfg): the generated config serves HTTPS on 0.0.0.0
#   --api-public     the generated config serves plain HTTP on 0.0.0.0 (needs
#                    a token); default: 127.0.0.1 in the VM, which the
#                    host forward cannot reach
#   --append ARGS    more kernel arguments (spamsink.hostname=, spamsink.ip=, ...)
#   --mem MB         memory (default 256; the appliance boots in 96)
#   --cpus N         virtual CPUs (default 1)
#   --accel A        tcg (default) | kvm
#   --monitor SOCK   also serve the qemu monitor on a unix socket
#   --out DIR        where build.sh put the image (default build-image)
#   -- ARGS          passed to qemu as they are
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$(dirname "$here")/build-image
smtp_port=2525 api_port=8025 bind=127.0.0.1 net=user mac='' boot=kernel data='' config='' token=''
token_file='' api_cert='' api_key=''
append='' mem=256 cpus=1 accel=${SPAMSINK_ACCEL:-tcg} monitor=''

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
while (($#)); do
	case "$1" in
	--smtp-port) smtp_port=$2; shift ;;
	--api-port) api_port=$2; shift ;;
	--bind) bind=$2; shift ;;
	--net) net=$2; shift ;;
	--mac) mac=$2; shift ;;
	--boot) boot=$2; shift ;;
	--data) data=$2; shift ;;
	--config) config=$2; shift ;;
	--token) token=$2; shift ;;
	--token-file) token_file=$2; shift ;;
	--api-cert) api_cert=$2; shift ;;
	--api-key) api_key=$2; shift ;;
	--api-public) append="$append spamsink.api_public=1" ;;
	--append) append="$append $2"; shift ;;
	--mem) mem=$2; shift ;;
	--cpus) cpus=$2; shift ;;
	--accel) accel=$2; shift ;;
	--monitor) monitor=$2; shift ;;
	--out) out=$2; shift ;;
	--) shift; break ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
die() { echo "run.sh: error: $*" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (run scripts/setup.sh as root)"

args=(-M pc -m "$mem" -smp "$cpus" -nodefaults -no-user-config -display none -no-reboot
	# a guest panic (spamsink failing for good) ends qemu with status 1
	-device pvpanic -action panic=exit-failure
	-device virtio-rng-pci)
case "$accel" in
tcg) args+=(-accel tcg) ;;
kvm) args+=(-accel kvm -cpu host) ;;
*) die "--accel must be tcg or kvm" ;;
esac
if [[ -t 0 ]]; then
	args+=(-serial mon:stdio)
else
	args+=(-serial stdio)
fi
[[ -n $monitor ]] && args+=(-monitor "unix:$monitor,server=on,wait=off")

case "$net" in
user)
	fwd="hostfwd=tcp:$bind:$smtp_port-:25"
	[[ $api_port != 0 ]] && fwd+=",hostfwd=tcp:$bind:$api_port-:8025"
	# restrict=on: the VM reaches nothing outside; the forwards still work
	args+=(-netdev "user,id=n0,restrict=on,$fwd")
	;;
tap:*) args+=(-netdev "tap,id=n0,ifname=${net#tap:},script=no,downscript=no") ;;
bridge:*) args+=(-netdev "bridge,id=n0,br=${net#bridge:}") ;;
*) die "--net must be user, tap:IFNAME or bridge:BRIDGE" ;;
esac
args+=(-device "virtio-net-pci,netdev=n0,romfile=${mac:+,mac=$mac}")

sargs=
# The token travels as an fw_cfg file, never on qemu's command line (the
# host's ps) nor on the kernel's (the guest's /proc/cmdline). --token: a
# private file, opened on descriptor 3 and removed at once; qemu reads it
# through /dev/fd/3.
if [[ -n $token ]]; then
	[[ -z $token_file ]] || die "give --token or --token-file, not both"
	tf=$(mktemp "${TMPDIR:-/tmp}/spamsink-token.XXXXXX")
	printf '%s\n' "$token" >"$tf"
	exec 3<"$tf"
	rm -f "$tf"
	token_file=/dev/fd/3
elif [[ -n $token_file ]]; then
	[[ -r $token_file ]] || die "cannot read the token file $token_file"
fi
if [[ -n $token_file ]]; then
	case "$token_file" in *,*) die "the token file's path may not hold a comma" ;; esac
	args+=(-fw_cfg "name=opt/spamsink/token,file=$token_file")
fi
if [[ -n $api_cert || -n $api_key ]]; then
	[[ -r $api_cert && -r $api_key ]] || die "--api-cert and --api-key go together (readable PEM files)"
	args+=(-fw_cfg "name=opt/spamsink/tls_cert,file=$api_cert" -fw_cfg "name=opt/spamsink/tls_key,file=$api_key")
fi
if [[ -n $data ]]; then
	if [[ ! -e $data ]]; then
		# blank: the VM formats it ext4 at its first boot (spamsink.data=)
		truncate -s 256M "$data"
		echo "run.sh: created blank data disk $data" >&2
	fi
	args+=(-drive "file=$data,format=raw,if=virtio,cache=writeback")
	# the data disk is vda: the kernel names virtio disks in PCI slot order,
	# and a boot disk sits in the last slot (0x1f, below)
	sargs+=" spamsink.data=/dev/vda"
fi
sargs+="$append"
if [[ -n $config ]]; then
	[[ -f $config ]] || die "no config file $config"
	args+=(-fw_cfg "name=opt/spamsink/config,file=$config")
fi

case "$boot" in
kernel)
	for f in vmlinuz initramfs.cpio.gz; do
		[[ -f $out/$f ]] || die "$out/$f missing: run image/build.sh first"
	done
	args+=(-kernel "$out/vmlinuz" -initrd "$out/initramfs.cpio.gz"
		-append "console=ttyS0 quiet panic=-1$sargs")
	;;
bios | uefi)
	[[ -f $out/disk.raw ]] || die "$out/disk.raw missing: run image/build.sh first"
	# the disk's boot entry has its own kernel command line; the settings go
	# through fw_cfg, which the VM's /init reads too (commas doubled for qemu)
	[[ -n $sargs ]] && args+=(-fw_cfg "name=opt/spamsink/cmdline,string=${sargs//,/,,}")
	# virtio, not IDE: the firmware reads kernel + initramfs twice as fast
	# under emulation. snapshot=on: the boot disk is never written.
	# addr=0x1f: after the data disk (--data is /dev/vda in the VM)
	args+=(-drive "file=$out/disk.raw,format=raw,if=none,id=boot,snapshot=on"
		-device "virtio-blk-pci,drive=boot,bootindex=0,addr=0x1f")
	[[ $boot == uefi ]] && args+=(-bios /usr/share/ovmf/OVMF.fd)
	;;
*) die "--boot must be kernel, bios or uefi" ;;
esac

if [[ $net == user ]]; then
	msg="SMTP on $bind:$smtp_port"
	[[ $api_port != 0 ]] && msg+=", API on http://$bind:$api_port/"
	echo "run.sh: $msg once the console shows spamsink's version" >&2
fi
exec qemu-system-x86_64 "${args[@]}" "$@"
