#!/usr/bin/env bash
# Figures of the appliance (a measurement, not a test): boots the image that
# image/build.sh made N times per boot method and prints the time from
# qemu's start to the first 220 banner on the forwarded port, then the least
# memory (among 64..256 MB) with which it still reaches the banner, and the
# artifact sizes. Loopback only; every boot bounded; qemu killed by pid.
#
# Usage: image/bench-boot.sh [--runs N] [--boot LIST] [--no-mem]
#   --runs N     boots per method (default 5)
#   --boot LIST  comma-separated kernel,bios,uefi (default kernel,bios,uefi)
#   --no-mem     skip the memory search
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$(dirname "$here")/build-image
probe=$here/probe.py
runs=5 boots=kernel,bios,uefi mem=1
while (($#)); do
	case "$1" in
	--runs) runs=$2; shift ;;
	--boot) boots=$2; shift ;;
	--no-mem) mem=0 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench-boot.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
tmp=$(mktemp -d /tmp/spamsink-bench.XXXXXX)
q=''
trap '[[ -n $q ]] && kill -KILL "$q" 2>/dev/null; rm -rf "$tmp"' EXIT

# one_boot HOW MEM: prints seconds to the banner, or "-" on failure
one_boot() {
	local how=$1 m=$2 port t0 t
	port=$("$probe" freeport)
	"$here/run.sh" --boot "$how" --mem "$m" --smtp-port "$port" --api-port 0 \
		</dev/null >"$tmp/console.log" 2>&1 &
	q=$!
	t0=$(date +%s.%N)
	t=-
	while kill -0 "$q" 2>/dev/null &&
		awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{exit !(b-a < 60)}'; do
		if timeout 10 "$probe" banner "$port" 2 >/dev/null 2>&1; then
			t=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
			break
		fi
	done
	kill -KILL "$q" 2>/dev/null || true
	wait "$q" 2>/dev/null || true
	q=''
	echo "$t"
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), qemu $(qemu-system-x86_64 --version | head -n 1 | awk '{print $4}'), TCG"
for how in kernel bios uefi; do
	[[ ,$boots, == *,$how,* ]] || continue
	ts=()
	for ((i = 0; i < runs; i++)); do ts+=("$(one_boot "$how" 256)"); done
	printf '%s\n' "${ts[@]}" | sort -n | awk -v how="$how" '
		$1 != "-" { v[n++] = $1 } $1 == "-" { f++ }
		END { if (n) printf "banner, %s boot, 256 MB: min %.2f s, median %.2f s, max %.2f s (%d runs, %d failed)\n", how, v[0], v[int((n-1)/2)], v[n-1], n+f, f
		      else printf "banner, %s boot: every run failed\n", how }'
done
if ((mem)); then
	least=''
	for m in 256 192 160 128 112 96 88 80 72 64; do
		[[ $(one_boot kernel "$m") == - ]] && break
		least=$m
	done
	echo "memory: the least that reaches the banner (kernel boot): ${least:-more than 256} MB"
fi
echo "sizes: vmlinuz $(stat -c %s "$out/vmlinuz") B, initramfs.cpio.gz $(stat -c %s "$out/initramfs.cpio.gz") B ($(gzip -dc "$out/initramfs.cpio.gz" | wc -c) B unpacked)$(
	[[ -f $out/disk.raw ]] && echo ", disk.raw $(stat -c %s "$out/disk.raw") B, disk.qcow2 $(stat -c %s "$out/disk.qcow2") B")"
