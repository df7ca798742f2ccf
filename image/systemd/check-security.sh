#!/bin/sh
# The shipped systemd units' exposure, as `systemd-analyze security` scores
# it (0 = locked down, 10 = exposed), must stay at or below MAX (default
# 1.5, issue 13). Fills in the templates' @...@ paths as image/install.sh
# does and scores the files offline (systemd 252: --offline=yes; nothing is
# installed or started). Exit 77 (ctest: skipped) without systemd-analyze
# or without --offline.
#
# Usage: image/systemd/check-security.sh [MAX]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
max=${1:-1.5}
command -v systemd-analyze >/dev/null || { echo "skipped: no systemd-analyze"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fill() { sed -e 's|@BINDIR@|/usr/bin|g' -e 's|@SYSCONFDIR@|/etc|g' -e 's|@DOCDIR@|/usr/share/doc/spamsink|g' "$1" >"$2"; }
fill "$here/spamsink.service.in" "$tmp/spamsink.service"
fill "$here/spamsink@.service.in" "$tmp/spamsink@check.service"
# --threshold counts tenths (0..100)
threshold=$(awk -v m="$max" 'BEGIN{printf "%d", m * 10 + 0.5}')
rc=0
for unit in "$tmp/spamsink.service" "$tmp/spamsink@check.service"; do
	above=0
	if ! out=$(systemd-analyze security --offline=yes --no-pager --threshold="$threshold" "$unit" 2>&1); then
		if ! printf '%s\n' "$out" | grep -q 'Overall exposure level'; then
			echo "skipped: systemd-analyze security --offline=yes failed: $(printf '%s\n' "$out" | tail -n 2)"
			exit 77
		fi
		above=1 rc=1
	fi
	level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for \([^:]*\): \([0-9.]*\).*/\1 \2/p')
	echo "exposure ${level:-?} (at most $max)"
	# what costs exposure, when above the bound
	[ $above = 0 ] || printf '%s\n' "$out" | grep '✗' || true
done
exit $rc
