#!/usr/bin/env bash
# Checks the Debian package and the systemd unit without installing anything
# (a few seconds):
#   - image/mkdeb.sh builds build-image/spamsink_*.deb
#   - its control fields, conffile and maintainer scripts (sh -n) are sane
#   - the packaged binary accepts the packaged default config (--check-config)
#   - `systemd-analyze verify` accepts the unit and `systemd-analyze security`
#     rates it at most 1.5
#   - image/install.sh --destdir lays out the same files
# With --install (as root, on a machine you may change): also
# `apt-get install ./spamsink_*.deb`, check the user, modes and files, run the
# binary as that user, then `apt-get purge` and remove the user again.
# Prints "package-test: N passed, M failed" last.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
out=$repo/build-image
real_install=0
[[ ${1:-} == --install ]] && real_install=1
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "package-test: ok: $*"; }
bad() { fail=$((fail + 1)); echo "package-test: FAIL: $*"; }
check() {
	local what=$1
	shift
	if "$@" >"$tmp/out" 2>&1; then ok "$what"; else bad "$what: $(head -c 600 "$tmp/out")"; fi
}
tmp=$(mktemp -d /tmp/spamsink-pkgtest.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

rm -f "$out"/spamsink_*.deb
check "image/mkdeb.sh builds the package" timeout 300 "$here/mkdeb.sh"
deb=$(find "$out" -maxdepth 1 -name 'spamsink_*.deb' | head -n 1)
if [[ -z $deb ]]; then
	echo "package-test: $pass passed, $((fail + 1)) failed"
	exit 1
fi
x=$tmp/x
dpkg-deb -R "$deb" "$x"
ctl=$x/DEBIAN/control
check "control: Package, Version, Architecture, Maintainer, Description" \
	bash -c "grep -q '^Package: spamsink$' '$ctl' && grep -q '^Version: [0-9]' '$ctl' &&
		grep -q '^Architecture: ' '$ctl' && grep -q '^Maintainer: ' '$ctl' && grep -q '^Description: ' '$ctl'"
check "control: Depends from dpkg-shlibdeps (libc6, libsqlite3, libssl3)" \
	bash -c "grep '^Depends:' '$ctl' | grep -q libc6 && grep '^Depends:' '$ctl' | grep -q libsqlite3 &&
		grep '^Depends:' '$ctl' | grep -q libssl3"
check "conffiles: /etc/spamsink/spamsink.toml" grep -qx /etc/spamsink/spamsink.toml "$x/DEBIAN/conffiles"
# shellcheck disable=SC2016 # expanded by the inner sh
check "maintainer scripts parse (sh -n)" \
	sh -c 'for f in "$@"; do sh -n "$f" || exit 1; done' sh "$x/DEBIAN/postinst" "$x/DEBIAN/prerm" "$x/DEBIAN/postrm"
check "files: binary, unit, sysusers, tmpfiles, config" test -x "$x/usr/bin/spamsink" -a \
	-f "$x/lib/systemd/system/spamsink.service" -a -f "$x/usr/lib/sysusers.d/spamsink.conf" -a \
	-f "$x/usr/lib/tmpfiles.d/spamsink.conf" -a -f "$x/etc/spamsink/spamsink.toml"
# The state directory (ledger.db_path's) is made by the unit's
# StateDirectory=; --check-config requires it to exist and be writable, so a
# temporary one stands in for /var/lib/spamsink here.
mkdir -p "$tmp/state"
check "the packaged binary accepts the packaged config" \
	"$x/usr/bin/spamsink" --config "$x/etc/spamsink/spamsink.toml" \
	--ledger-db-path "$tmp/state/spamsink.db" --check-config
check "the packaged config listens on loopback only" \
	bash -c "grep -E '^listen' '$x/etc/spamsink/spamsink.toml' | grep -vqE '0\\.0\\.0\\.0|\\[::\\]:'"

if command -v systemd-analyze >/dev/null; then
	unit=$tmp/spamsink.service
	sed "s|/usr/bin/spamsink|$x/usr/bin/spamsink|g" "$x/lib/systemd/system/spamsink.service" >"$unit"
	check "systemd-analyze verify spamsink.service" \
		bash -c "systemd-analyze verify '$unit' 2>&1 | { ! grep -v -e 'Failed to put bus name' -e 'Failed to connect to bus' -e '^$'; }"
	score=$(systemd-analyze security --offline=true "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	if [[ -n $score ]] && awk -v s="$score" 'BEGIN{exit !(s <= 1.5)}'; then
		ok "systemd-analyze security: exposure $score (at most 1.5, issue 13)"
	else
		bad "systemd-analyze security: exposure '${score:-?}', want at most 1.5"
	fi
fi

check "image/install.sh --destdir lays out the same files" bash -c "
	'$here/install.sh' --destdir '$tmp/i' --prefix /usr --strip >/dev/null &&
	diff <(cd '$tmp/i' && find . -type f | sed 's|^./usr/lib/systemd/|./lib/systemd/|' | sort) \
	     <(cd '$x' && find . -type f ! -path './DEBIAN/*' ! -name 'changelog.Debian.gz' | sort)"

if ((real_install)); then
	[[ $(id -u) == 0 ]] || { echo "package-test: --install needs root" >&2; exit 2; }
	if getent passwd spamsink >/dev/null || dpkg -s spamsink >/dev/null 2>&1; then
		bad "--install: a spamsink user or package exists already; not touching it"
	else
		check "apt-get install ./$(basename "$deb")" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb"
		check "user spamsink exists" getent passwd spamsink
		check "/var/lib/spamsink is 0750 spamsink:spamsink" \
			bash -c "[[ \$(stat -c '%a %U %G' /var/lib/spamsink) == '750 spamsink spamsink' ]]"
		check "/etc/spamsink/spamsink.toml is 0640 root:spamsink" \
			bash -c "[[ \$(stat -c '%a %U %G' /etc/spamsink/spamsink.toml) == '640 root spamsink' ]]"
		check "spamsink --check-config as the user spamsink" \
			setpriv --reuid=spamsink --regid=spamsink --init-groups \
			/usr/bin/spamsink --config /etc/spamsink/spamsink.toml --check-config
		check "apt-get purge spamsink" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q spamsink
		check "purge removed /var/lib/spamsink and /etc/spamsink" \
			bash -c "[[ ! -e /var/lib/spamsink && ! -e /etc/spamsink && ! -e /usr/bin/spamsink ]]"
		userdel spamsink 2>/dev/null || true
		getent group spamsink >/dev/null && groupdel spamsink
	fi
fi

echo "package-test: $pass passed, $fail failed"
((fail == 0))
