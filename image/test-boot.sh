#!/usr/bin/env bash
# Boot test of the spamsink appliance (issue 6), for CI and by hand:
#   1. build the image (image/build.sh)
#   2. boot it under qemu (software emulation) with user networking and host
#      forwards on random free 127.0.0.1 ports, a fresh data disk and a token
#   3. wait for the 220 banner through the forwarded SMTP port
#   4. deliver mail through it (python3 smtplib; plus build/smtpsend if built)
#   5. if the binary serves the HTTP API: /api/v1/stats answers 401 without
#      the token and counts the messages with it (HTTPS: the first boot
#      hands the VM a TLS certificate, run.sh --api-cert/--api-key)
#   5b. at every boot (issue 13): the token (run.sh --token-file, fw_cfg) is
#      on neither qemu's command line nor the guest's /proc/cmdline (which
#      init logs) nor the console, and spamsink's started line says uid=100
#      (the second boot's own config has no server.user)
#   6. shut down through the ACPI power button (qemu system_powerdown): the
#      console must show spamsink exiting 0 and the VM powering off
#   7. the VM formats the blank data disk ext4 and runs e2fsck -p on it at
#      every boot (console; a disk marked with errors between the boots is
#      checked fully and the mark cleared); after each shutdown it is ext4
#      (dumpe2fs -h) and clean (e2fsck -fn on the host); the ledger, read offline from it
#      (debugfs + spamsink export), holds the messages; boot again on it with a config
#      file handed over by run.sh --config: it is used, the counts survived
#      (through the API when served) and grow with one more message
#   8. boot the disk image (BIOS, then UEFI) and check banner, the API token
#      (passed through fw_cfg) and one message; the BIOS boot gets an ext2
#      data disk (as an older image made): checked, used, still ext2, and
#      holding a planted spamsink.toml that init must ignore; BIOS opens the
#      API with --api-public, UEFI keeps the default (the VM's 127.0.0.1:
#      nothing answers through the forward)
#   9. as root: boot on a tap device with a static address inside a private
#      network namespace (unshare -n; 10.99.0.0/24 exists only there)
#  10. only with BOOT_LEDGER_SOURCES=N (the long mode, e.g. 5000000): a data
#      disk holding a generated ledger of N sources (bench/gen_ledger.py,
#      ext4 made by mke2fs -d), booted in BOOT_LEDGER_MEM MB (default 96)
#      with server.memory_limit = BOOT_LEDGER_LIMIT bytes (default 64 MiB):
#      banner, mail, the API's stats (N sources) and a streamed export
#      (format plain: N lines), no OOM killer on the console, a clean
#      shutdown; prints the boot, export and RSS figures
# Judged by the banner, the SMTP replies, the API answers and the console,
# never by qemu's exit status. Every wait is bounded; qemu is killed by its
# own pid on every exit path. Prints "boot-test: N passed, M failed" last and
# exits non-zero on any failure.
#
# Usage: image/test-boot.sh [--no-build] [--bin FILE]
#          [--boot LIST]   comma-separated subset of kernel,bios,uefi,tap,big
#                          (default: all; tap needs root and unshare; big
#                          needs BOOT_LEDGER_SOURCES and is in the default
#                          list only when it is set)
# Environment: BOOT_TIMEOUT (s to the banner, default 120), BOOT_MEM (the
#   VMs' memory in MB, default 96), SPAMSINK_BIN,
#   BOOT_LEDGER_SOURCES, BOOT_LEDGER_MEM, BOOT_LEDGER_LIMIT (step 10),
#   BOOT_LEDGER_DISK (step 10: reuse a data disk an earlier KEEP=1 run made),
#   KEEP=1 keeps the temporary directory (console logs) for inspection.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
out=$repo/build-image
probe=$here/probe.py
build=1 boots=kernel,bios,uefi,tap
[[ -n ${BOOT_LEDGER_SOURCES:-} ]] && boots+=,big
bin=${SPAMSINK_BIN:-$repo/build/spamsink}
boot_timeout=${BOOT_TIMEOUT:-120}
# 96 MB: the appliance's smallest size (issue 13; the initramfs has the libpq
# stub and is xz-compressed, image/build.sh)
boot_mem=${BOOT_MEM:-96}
while (($#)); do
	case "$1" in
	--no-build) build=0 ;;
	--bin) bin=$2; shift ;;
	--boot) boots=$2; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "test-boot.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

t_start=$(date +%s.%N)
elapsed() { awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
say() { echo "boot-test [$(elapsed) s]: $*"; }
pass=0 fail=0
ok() { pass=$((pass + 1)); say "ok: $*"; }
bad() { fail=$((fail + 1)); say "FAIL: $*"; }

tmp=$(mktemp -d /tmp/spamsink-boottest.XXXXXX)
qemu_pid=''
cleanup() {
	if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
		kill -TERM "$qemu_pid" 2>/dev/null || true
		sleep 1
		kill -KILL "$qemu_pid" 2>/dev/null || true
	fi
	if [[ ${KEEP:-0} == 1 ]]; then echo "boot-test: logs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. build ----
bargs=()
bargs=(--bin "$bin")
[[ ,$boots, != *,bios,* && ,$boots, != *,uefi,* ]] && bargs+=(--no-disk)
if ((build)); then
	say "building the image: image/build.sh ${bargs[*]}"
	timeout 600 "$here/build.sh" "${bargs[@]}" >"$tmp/build.log" 2>&1 || {
		cat "$tmp/build.log"
		bad "image/build.sh failed"
		echo "boot-test: $pass passed, $fail failed"
		exit 1
	}
	ok "image built ($(grep -c . "$tmp/build.log") lines of log; initramfs $(stat -c %s "$out/initramfs.cpio.gz") bytes)"
fi
api=0
if grep -qa '/healthz' "$bin"; then api=1; fi
if ((api)); then
	say "the binary serves the HTTP API: checking counts through it"
else
	say "the binary has no HTTP API (no /healthz in it): judging by SMTP replies and the ledger file only"
fi

smtp_port=$("$probe" freeport)
api_port=$("$probe" freeport)
while [[ $api_port == "$smtp_port" ]]; do api_port=$("$probe" freeport); done
token=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
# the token reaches the VM as an fw_cfg file (run.sh --token-file), never on
# a command line
(umask 077 && printf '%s\n' "$token" >"$tmp/token")
# the API's TLS certificate for the first boot (its name: the forward's
# address); probe.py checks it with PROBE_CAFILE
tls=0
if command -v openssl >/dev/null && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$tmp/api.key" -out "$tmp/api.crt" -days 2 -subj /CN=spamsink-vm \
	-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1; then
	tls=1
fi
data=$tmp/data.img
expected=0

# boot_vm NAME BOOT [run.sh args...]: starts qemu, waits for the banner
boot_vm() {
	local name=$1 how=$2
	shift 2
	console=$tmp/console-$name.log
	"$here/run.sh" --boot "$how" --smtp-port "$smtp_port" --api-port "$api_port" \
		--token-file "$tmp/token" --monitor "$tmp/monitor-$name.sock" --mem "$boot_mem" "$@" \
		</dev/null >"$console" 2>&1 &
	qemu_pid=$! # run.sh execs qemu: this is qemu's pid
	qemu_cmdline=''
	local r t0 now
	t0=$(date +%s.%N)
	while :; do
		now=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
		if ! kill -0 "$qemu_pid" 2>/dev/null; then
			bad "$name: qemu exited after $now s without a banner; console:"
			break
		fi
		if awk -v n="$now" -v t="$boot_timeout" 'BEGIN{exit !(n > t)}'; then
			bad "$name: no 220 banner within $boot_timeout s; console:"
			break
		fi
		[[ -z $qemu_cmdline && -r /proc/$qemu_pid/cmdline ]] &&
			qemu_cmdline=$(tr '\0' ' ' </proc/"$qemu_pid"/cmdline)
		if r=$(timeout 10 "$probe" banner "$smtp_port" 2 2>/dev/null); then
			banner_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
			ok "$name: banner ${banner_s} s after qemu started: ${r#* }"
			return 0
		fi
	done
	tail -n 40 "$console" | sed 's/^/    | /'
	stop_vm "$name" force
	return 1
}

# stop_vm NAME [force]: power button, then wait (bounded) for qemu to exit
stop_vm() {
	local name=$1 force=${2:-} i
	[[ -n $qemu_pid ]] || return 0
	if [[ -z $force ]]; then
		timeout 10 "$probe" monitor "$tmp/monitor-$name.sock" system_powerdown || true
		for ((i = 0; i < 600; i++)); do
			kill -0 "$qemu_pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	if kill -0 "$qemu_pid" 2>/dev/null; then
		[[ -z $force ]] && bad "$name: VM still running 60 s after the power button; killing it"
		kill -KILL "$qemu_pid" 2>/dev/null || true
		sleep 0.5
	elif [[ -z $force ]]; then
		if grep -q "spamsink exited with status 0; powering off" "$console"; then
			ok "$name: clean shutdown on the power button ($(grep -o 'spamsink exited with status [0-9]*' "$console" | tail -n 1))"
		else
			bad "$name: no clean shutdown; console:"
			tail -n 20 "$console" | sed 's/^/    | /'
		fi
	fi
	wait "$qemu_pid" 2>/dev/null || true
	qemu_pid=''
}

# secrets_check NAME: the token is on no command line (qemu's on the host,
# the kernel's in the guest, which init logs) nor on the console, and
# spamsink runs as the spamsink user (uid 100) whatever the config says
secrets_check() {
	local name=$1 line
	qemu_cmdline=$(tr '\0' ' ' </proc/"$qemu_pid"/cmdline 2>/dev/null || echo "$qemu_cmdline")
	if [[ -z $qemu_cmdline ]]; then
		bad "$name: could not read qemu's command line"
	elif [[ $qemu_cmdline == *"$token"* ]]; then
		bad "$name: the API token is on qemu's command line"
	else
		ok "$name: the API token is not on qemu's command line (host ps)"
	fi
	line=$(grep -m1 '^init: kernel command line: ' "$console" || true)
	if [[ -z $line ]]; then
		bad "$name: init did not log /proc/cmdline"
	elif [[ $line == *"$token"* || $line == *spamsink.token=* ]]; then
		bad "$name: the guest's /proc/cmdline holds the token"
	else
		ok "$name: the guest's /proc/cmdline lacks the token (${line#init: kernel command line: })"
	fi
	if grep -qF -- "$token" "$console"; then
		bad "$name: the API token appears on the console: $(grep -m1 -F -- "$token" "$console" | sed "s/$token/<TOKEN>/g")"
	else
		ok "$name: the API token is not on the console"
	fi
	line=$(grep -m1 'event=started' "$console" || true)
	if [[ $line == *' uid=100'* ]]; then
		ok "$name: spamsink runs as uid 100 (spamsink): ${line##*event=started}"
	else
		bad "$name: spamsink's started line lacks uid=100: ${line:-no started line}"
	fi
}

check_console() {
	# '^spamsink: spamsink ': e2fsck's summary starts with the disk's label,
	# "spamsink: clean, ..."
	if grep -q '^eth0: [0-9]' "$console" && grep -q '^spamsink: spamsink ' "$console"; then
		ok "$1: console shows $(grep -m1 '^eth0: ' "$console") and '$(grep -m1 '^spamsink: spamsink ' "$console")'"
	else
		bad "$1: console lacks the IP address or spamsink's version"
	fi
}

deliver() {
	local name=$1 n=$2 r
	if r=$(timeout 120 "$probe" send "$smtp_port" "$n" 2>&1); then
		ok "$name: $r"
		expected=$((expected + n))
	else
		bad "$name: delivery failed: $r"
	fi
}

# wait_count NAME MIN: the API's message count reaches MIN within 20 s
wait_count() {
	local name=$1 min=$2 c=-1 i
	for ((i = 0; i < 40; i++)); do
		c=$(timeout 15 "$probe" count "$api_port" "$token" messages 2>/dev/null) || c=-1
		((c >= min)) && break
		sleep 0.5
	done
	if ((c >= min)); then
		ok "$name: API counts $c messages (expected at least $min)"
	else
		bad "$name: API counts $c messages, expected at least $min; last answer: $(timeout 15 "$probe" http "$api_port" /api/v1/stats "$token" || true)"
	fi
}

# ledger_check NAME MIN: after a shutdown, the ledger on the data disk (read
# offline with debugfs + `spamsink export`) holds at least MIN messages
ledger_check() {
	local name=$1 min=$2 db=$tmp/ledger-$1.db n
	if ! command -v debugfs >/dev/null; then return 0; fi
	rm -f "$db" "$db-wal" "$db-shm"
	# the WAL too: it holds whatever was not yet checkpointed into the .db
	timeout 30 debugfs -R "dump /spamsink.db $db" "$data" >/dev/null 2>&1 || true
	timeout 30 debugfs -R "dump /spamsink.db-wal $db-wal" "$data" >/dev/null 2>&1 || true
	if [[ ! -s $db ]]; then
		bad "$name: no spamsink.db on the data disk after shutdown"
		return 0
	fi
	n=$(timeout 30 "$bin" export --format jsonl --db "$db" 2>"$tmp/export.err" | "$probe" jsonl-sum messages) || n=-1
	if ((n >= min)); then
		ok "$name: the ledger on the data disk holds $n messages (spamsink export; expected at least $min)"
	else
		bad "$name: the ledger on the data disk holds $n messages, expected at least $min ($(head -c 300 "$tmp/export.err"))"
	fi
}

# disk_boot_check NAME FORMATTED: the console shows the data disk's e2fsck
# (and, on the first boot, its formatting as ext4)
disk_boot_check() {
	local name=$1 formatted=$2 f
	f=$(grep -m1 'formatting blank data disk' "$console" || true)
	if ((formatted)) && [[ $f != *'(ext4)'* ]]; then
		bad "$name: the VM did not format the blank data disk as ext4 (console: ${f:-nothing})"
	elif ((!formatted)) && [[ -n $f ]]; then
		bad "$name: the VM formatted the data disk again: $f"
	elif ((formatted)); then
		ok "$name: ${f#init: }"
	fi
	f=$(grep -m1 '^init: e2fsck -p /dev/vda: status' "$console" || true)
	if [[ $f == *'status 0 (clean)'* ]]; then
		ok "$name: ${f#init: }"
	else
		bad "$name: no clean e2fsck -p of the data disk at boot (console: ${f:-nothing})"
	fi
}

# disk_host_check NAME: after a shutdown, the data disk is ext4 (dumpe2fs)
# and was unmounted cleanly (e2fsck -fn finds nothing)
disk_host_check() {
	local name=$1 feat state
	command -v dumpe2fs >/dev/null || return 0
	feat=$(dumpe2fs -h "$data" 2>/dev/null | sed -n 's/^Filesystem features: *//p')
	state=$(dumpe2fs -h "$data" 2>/dev/null | sed -n 's/^Filesystem state: *//p')
	if [[ " $feat " == *' has_journal '* && " $feat " == *' extent '* && " $feat " == *' huge_file '* ]]; then
		ok "$name: the data disk is ext4 (dumpe2fs: $feat)"
	else
		bad "$name: the data disk is not ext4 (dumpe2fs features: ${feat:-none})"
	fi
	if [[ $state == clean ]]; then
		ok "$name: the data disk's state is clean"
	else
		bad "$name: the data disk's state is '$state', not clean"
	fi
	if timeout 60 e2fsck -fn "$data" >"$tmp/fsck.log" 2>&1; then
		ok "$name: e2fsck -fn on the host finds the data disk clean"
	else
		bad "$name: e2fsck -fn on the host: $(tail -n 3 "$tmp/fsck.log")"
	fi
}

# ---- 2-6. direct kernel boot ----
if [[ ,$boots, == *,kernel,* ]]; then
	# a blank disk (run.sh would format a missing one on the host): the VM
	# formats it ext4 itself
	truncate -s 256M "$data"
	# the generated config with TLS: the API on 0.0.0.0, HTTPS
	kargs=()
	if ((tls)); then
		kargs=(--api-cert "$tmp/api.crt" --api-key "$tmp/api.key")
		export PROBE_CAFILE=$tmp/api.crt
	else
		say "kernel: no openssl: the API is opened with --api-public instead of TLS"
		kargs=(--api-public)
	fi
	if boot_vm kernel kernel --data "$data" "${kargs[@]}"; then
		boot1_s=$banner_s
		check_console kernel
		secrets_check kernel
		if ((tls)); then
			if grep -q 'tls=on' "$console"; then ok "kernel: the API serves HTTPS ($(grep -m1 -o 'event=api_listening.*' "$console"))"; else bad "kernel: the API does not say tls=on"; fi
		fi
		disk_boot_check kernel 1
		deliver kernel 5
		if [[ -x $repo/build/smtpsend ]]; then
			if r=$(timeout 120 "$repo/build/smtpsend" -n 10 -p "$smtp_port" 127.0.0.1 2>&1); then
				ok "kernel: smtpsend -n 10 delivered"
				expected=$((expected + 10))
			else
				bad "kernel: smtpsend -n 10 -p $smtp_port 127.0.0.1 failed: $(tail -n 5 <<<"$r")"
			fi
		fi
		if ((api)); then
			r=$(timeout 15 "$probe" http "$api_port" /healthz || true)
			if [[ $r == 200* ]]; then ok "kernel: /healthz: ${r:0:60}"; else bad "kernel: /healthz answered: ${r:0:200}"; fi
			r=$(timeout 15 "$probe" http "$api_port" /api/v1/stats || true)
			if [[ $r == 401* ]]; then ok "kernel: API without token: ${r:0:60}"; else bad "kernel: API without token answered: ${r:0:200}"; fi
			wait_count kernel "$expected"
		fi
		stop_vm kernel
		unset PROBE_CAFILE
		disk_host_check kernel
		ledger_check kernel "$expected"
		# ---- 7. the ledger survives a reboot on the same data disk; this
		# time with our own config file (qemu fw_cfg, run.sh --config) ----
		# no server.user (init forces --user spamsink) and no token (the
		# fw_cfg token reaches spamsink in SPAMSINK_API_TOKEN)
		cat >"$tmp/own.toml" <<EOF
[server]
listen = ["0.0.0.0:25", "[::]:25"]
hostname = "mx-reboot.example.org"
[ledger]
db_path = "/var/lib/spamsink/spamsink.db"
[api]
listen = "0.0.0.0:8025"
[log]
sessions = false
EOF
		cargs=(--config "$tmp/own.toml")
		# mark the disk as having errors (what the kernel does when it finds
		# some): the boot's e2fsck -p must check it fully and clear the mark
		if command -v tune2fs >/dev/null; then
			tune2fs -E force_fsck "$data" >/dev/null 2>&1 || bad "tune2fs -E force_fsck failed"
		fi
		if boot_vm reboot kernel --data "$data" "${cargs[@]}"; then
			if grep -q 'config /run/spamsink-fwcfg.toml' "$console" &&
				timeout 10 "$probe" banner "$smtp_port" 5 | grep -q 'mx-reboot.example.org'; then
				ok "reboot: the config from run.sh --config is used (banner names mx-reboot.example.org)"
			else
				bad "reboot: the config from run.sh --config is not used"
			fi
			disk_boot_check reboot 0
			secrets_check reboot
			if command -v tune2fs >/dev/null; then
				if grep -q 'contains a file system with errors, check forced' "$console"; then
					ok "reboot: e2fsck -p checked the disk marked with errors ($(grep -m1 'check forced' "$console"))"
				else
					bad "reboot: e2fsck -p did not force a check of the disk marked with errors"
				fi
			fi
			((api)) && wait_count reboot "$expected"
			deliver reboot 1
			stop_vm reboot
			disk_host_check reboot
			ledger_check reboot "$expected"
		fi
	fi
fi

# ---- 8. the disk image ----
for how in bios uefi; do
	[[ ,$boots, == *,$how,* ]] || continue
	if [[ $how == uefi && ! -f /usr/share/ovmf/OVMF.fd ]]; then
		bad "uefi: /usr/share/ovmf/OVMF.fd missing (apt-get install ovmf)"
		continue
	fi
	dargs=()
	if [[ $how == bios ]] && command -v mke2fs >/dev/null; then
		# a data disk made by an older image (ext2, no journal) still works:
		# checked, mounted, written, left ext2. It holds a spamsink.toml (as
		# a compromised spamsink could write one): init must ignore it
		data=$tmp/data-ext2.img
		mkdir -p "$tmp/ext2"
		printf '[server]\nlisten = ["0.0.0.0:25"]\nhostname = "mx-planted.example.org"\n' >"$tmp/ext2/spamsink.toml"
		truncate -s 64M "$data"
		mke2fs -q -t ext2 -L spamsink -d "$tmp/ext2" "$data"
		dargs=(--data "$data")
	fi
	# bios: the operator's opt-in to plain HTTP on 0.0.0.0; uefi: the
	# default, the API on the VM's 127.0.0.1 (the forward reaches nothing)
	[[ $how == bios ]] && dargs+=(--api-public)
	# OVMF cannot load the unified kernel image in 96 or 128 MB ("BdsDxe:
	# failed to load Boot0001 ... Out of Resources", then its shell): the
	# firmware's need, not the appliance's (BIOS boots in 96). UEFI boots
	# get 256 MB at least
	if [[ $how == uefi ]] && ((boot_mem < 256)); then
		say "uefi: booted in 256 MB (OVMF runs out of resources loading spamsink.efi in $boot_mem or 128 MB)"
		dargs+=(--mem 256)
	fi
	if boot_vm "$how" "$how" "${dargs[@]}"; then
		check_console "$how"
		secrets_check "$how"
		[[ $how == bios ]] && ((${#dargs[@]} > 1)) && disk_boot_check "$how" 0
		if [[ $how == bios && -f $tmp/ext2/spamsink.toml ]]; then
			if grep -q 'ignoring /var/lib/spamsink/spamsink.toml' "$console" &&
				! timeout 10 "$probe" banner "$smtp_port" 5 | grep -q mx-planted; then
				ok "bios: the spamsink.toml on the data disk is ignored"
			else
				bad "bios: the spamsink.toml on the data disk was used (or not reported)"
			fi
		fi
		if ((api)) && [[ $how == bios ]]; then
			# the token reached the VM through fw_cfg (a disk boot has its
			# own kernel command line): the API accepts it
			wait_count "$how" 0
		elif ((api)); then
			r=$(timeout 15 "$probe" http "$api_port" /healthz || true)
			if [[ $r == 000* ]] && grep -q 'API on 127.0.0.1:8025' "$console"; then
				ok "$how: the API listens on the VM's 127.0.0.1 only (through the forward: ${r:0:60})"
			else
				bad "$how: the API answers through the forward without an opt-in: ${r:0:100}"
			fi
		fi
		deliver "$how" 1
		stop_vm "$how"
		if [[ $how == bios ]] && ((${#dargs[@]} > 1)); then
			if dumpe2fs -h "$data" 2>/dev/null | grep -q '^Filesystem features:.*has_journal'; then
				bad "$how: the ext2 data disk gained a journal"
			elif timeout 60 e2fsck -fn "$data" >"$tmp/fsck.log" 2>&1; then
				ok "$how: the ext2 data disk is still ext2 and clean after the shutdown"
			else
				bad "$how: e2fsck -fn on the ext2 data disk: $(tail -n 3 "$tmp/fsck.log")"
			fi
			ledger_check "$how" 1
		fi
	fi
done

# ---- 9. real networking: a tap device and a static address, inside a
# private network namespace (root only; nothing leaves the namespace) ----
if [[ ,$boots, == *,tap,* ]]; then
	if [[ $(id -u) != 0 ]] || ! command -v unshare >/dev/null; then
		say "tap: skipped (needs root and unshare)"
	else
		cat >"$tmp/tap.sh" <<EOF
set -eu
ip link set lo up
ip tuntap add dev tap0 mode tap
ip addr add 10.99.0.1/24 dev tap0
ip link set tap0 up
"$here/run.sh" --net tap:tap0 --mac 52:54:00:99:00:02 --token-file "$tmp/token" --api-public \\
	--append "spamsink.ip=10.99.0.2/24,10.99.0.1 spamsink.onexit=panic" </dev/null >"$tmp/console-tap.log" 2>&1 &
q=\$!
trap 'kill -KILL \$q 2>/dev/null || true' EXIT
/usr/bin/python3 - <<'PY'
import http.client, socket, sys, time
t0 = time.monotonic()
while time.monotonic() - t0 < $boot_timeout:
    try:
        with socket.create_connection(("10.99.0.2", 25), timeout=2) as s:
            s.settimeout(3)
            line = s.recv(200).decode("latin-1").strip()
            if line.startswith("220"):
                print("banner %.2f %s" % (time.monotonic() - t0, line))
                break
    except OSError:
        time.sleep(0.25)
if $api:
    try:
        c = http.client.HTTPConnection("10.99.0.2", 8025, timeout=10)
        c.request("GET", "/api/v1/stats", headers={"Authorization": "Bearer $token"})
        print("api", c.getresponse().status)
    except (OSError, http.client.HTTPException) as e:
        print("api error", e)
PY
EOF
		r=$(timeout $((boot_timeout + 30)) unshare -n bash "$tmp/tap.sh" 2>&1) || true
		if grep -q '^banner .* 220' <<<"$r"; then
			ok "tap: banner on 10.99.0.2:25 (static address, tap device, own netns) $(grep -o '^banner [0-9.]*' <<<"$r" | cut -d' ' -f2) s after qemu started"
		else
			bad "tap: no banner on 10.99.0.2:25: $(tail -n 3 <<<"$r") $(tail -n 5 "$tmp/console-tap.log" 2>/dev/null)"
		fi
		if ((api)); then
			if grep -q '^api 200' <<<"$r"; then ok "tap: API answers on 10.99.0.2:8025 with the token"; else bad "tap: API: $(grep '^api' <<<"$r")"; fi
		fi
	fi
fi

# ---- 10. the appliance with a big ledger (BOOT_LEDGER_SOURCES) ----
if [[ ,$boots, == *,big,* ]]; then
	n=${BOOT_LEDGER_SOURCES:-} bigdata=''
	bmem=${BOOT_LEDGER_MEM:-96} blimit=${BOOT_LEDGER_LIMIT:-67108864}
	gen=$repo/bench/gen_ledger.py
	if [[ -z $n ]] || ! command -v mke2fs >/dev/null || [[ ! -x $repo/build/export_bench ]]; then
		bad "big: needs BOOT_LEDGER_SOURCES, mke2fs and build/export_bench"
	elif [[ -n ${BOOT_LEDGER_DISK:-} ]]; then
		# a data disk made by an earlier run (KEEP=1 keeps data-big.img):
		# used as it is (the boot writes to it)
		bigdata=$BOOT_LEDGER_DISK
		ok "big: reusing the data disk $bigdata ($(($(stat -c %s "$bigdata") >> 20)) MiB)"
	else
		mkdir -p "$tmp/big"
		t0=$(date +%s.%N)
		if r=$(timeout 3600 python3 "$gen" --db "$tmp/big/spamsink.db" --sources "$n" --build "$repo/build" 2>&1); then
			ok "big: $r"
		else
			bad "big: gen_ledger.py failed: $(tail -n 3 <<<"$r")"
		fi
		# the VM's spamsink user (uid/gid 100) owns the ledger, as at run time
		chown -R 100:100 "$tmp/big"
		dbbytes=$(stat -c %s "$tmp/big/spamsink.db")
		bigdata=$tmp/data-big.img
		# twice the database: room for its WAL, a checkpoint and new records
		if timeout 1200 mke2fs -q -t ext4 -L spamsink -d "$tmp/big" "$bigdata" "$((dbbytes * 2 / 1024 + 262144))k" 2>"$tmp/mke2fs.log"; then
			ok "big: data disk $(($(stat -c %s "$bigdata") >> 20)) MiB (ext4, mke2fs -d) holding a $((dbbytes >> 20)) MiB ledger; prepared in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", b-a}') s"
		else
			bad "big: mke2fs -d failed: $(tail -n 3 "$tmp/mke2fs.log")"
		fi
		rm -rf "$tmp/big"
	fi
	if [[ -n $n && -f ${bigdata:-} ]]; then
		cat >"$tmp/big.toml" <<EOF
[server]
listen = ["0.0.0.0:25", "[::]:25"]
hostname = "mx-big.example.org"
user = "spamsink"
memory_limit = $blimit
[ledger]
db_path = "/var/lib/spamsink/spamsink.db"
[api]
listen = "0.0.0.0:8025"
# the header deadline also cuts a streamed export running longer than it
# (HttpServer::Start replaces the pre-routing handler that marks a request
# busy): raised here so that the export is measured
header_timeout = 3600
[log]
sessions = false
EOF
		if boot_vm big kernel --data "$bigdata" --config "$tmp/big.toml" --mem "$bmem" --append no_timer_check; then
			big_boot_s=$banner_s
			deliver big 5
			r=$(timeout 60 "$probe" http "$api_port" /api/v1/stats "$token" || true)
			s=$(grep -o '"sources": *[0-9]*' <<<"$r" | head -n 1 | grep -o '[0-9]*$' || true)
			if [[ $r == 200* && ${s:-0} -ge $n ]]; then
				ok "big: /api/v1/stats answers: $s sources"
			else
				bad "big: /api/v1/stats: ${r:0:300}"
			fi
			r=$(timeout 60 "$probe" http "$api_port" '/api/v1/sources?limit=100&sort=last_seen' "$token" || true)
			if [[ $r == 200* ]]; then ok "big: a page of 100 sources by last_seen"; else bad "big: /api/v1/sources: ${r:0:200}"; fi
			# a streamed export of every source (plain: one line each)
			if r=$(timeout 3000 "$probe" drain "$api_port" '/api/v1/export?format=plain' "$token"); then
				read -r _ bytes lines secs _ <<<"$r"
				if ((lines >= n)); then
					big_export="$lines lines, $((bytes >> 20)) MiB in $secs s"
					ok "big: export format=plain: $big_export"
				else
					bad "big: export format=plain gave $lines lines, want at least $n ($r)"
				fi
			else
				bad "big: export failed: $r"
			fi
			# (the gauge is kept with server.memory_limit set, as here)
			big_rss=$(timeout 30 "$probe" metric "$api_port" "$token" spamsink_memory_rss_bytes | awk '$1 > 0 {printf "%.1f MiB", $1 / 1048576}' || true)
			deliver big 1
			stop_vm big
			if grep -qiE 'out of memory|oom-kill|invoked oom-killer' "$console"; then
				bad "big: the OOM killer ran: $(grep -m1 -iE 'out of memory|oom' "$console")"
			else
				ok "big: no OOM killer on the console (${bmem} MB, memory_limit $((blimit >> 20)) MiB; $(grep -c 'event=memory_limit_reached' "$console" || true) memory_limit_reached lines)"
			fi
			say "figures (big): $n sources, banner after ${big_boot_s} s, export ${big_export:-failed}, spamsink RSS after it ${big_rss:-?} (${bmem} MB VM, TCG)"
		fi
	fi
fi

say "figures: first banner after ${boot1_s:-?} s (direct kernel boot, TCG, $boot_mem MB); vmlinuz $(stat -c %s "$out/vmlinuz" 2>/dev/null) bytes, initramfs $(stat -c %s "$out/initramfs.cpio.gz" 2>/dev/null) bytes"
echo "boot-test: $pass passed, $fail failed"
((fail == 0))
