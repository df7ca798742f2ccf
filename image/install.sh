#!/usr/bin/env bash
# `make install` for spamsink on an ordinary (systemd) server.
#
#   image/install.sh                      install to /usr/local, as root
#   image/install.sh --prefix /usr        the Debian layout (image/mkdeb.sh)
#   image/install.sh --destdir DIR ...    stage into DIR (packaging; no user
#                                         is created, systemd is not told)
#
# Installs: PREFIX/bin/spamsink (and smtpsend when built), the systemd unit,
# sysusers.d and tmpfiles.d entries, SYSCONFDIR/spamsink/spamsink.toml (never
# overwriting an existing one) and the docs. Without --destdir, as root, it
# also creates the spamsink user and runs `systemctl daemon-reload`; start
# the service with `systemctl enable --now spamsink`.
#
# Options: --prefix DIR (default /usr/local), --sysconfdir DIR (default /etc),
#   --destdir DIR, --bin FILE (default build/spamsink), --smtpsend FILE
#   (default build/smtpsend, skipped if missing), --strip (drop debug info),
#   --uninstall (remove what an install put there, except config and ledger)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
prefix=/usr/local sysconfdir=/etc destdir='' strip=0 uninstall=0
bin=$repo/build/spamsink smtpsend=$repo/build/smtpsend
while (($#)); do
	case "$1" in
	--prefix) prefix=$2; shift ;;
	--sysconfdir) sysconfdir=$2; shift ;;
	--destdir) destdir=$2; shift ;;
	--bin) bin=$2; shift ;;
	--smtpsend) smtpsend=$2; shift ;;
	--strip) strip=1 ;;
	--uninstall) uninstall=1 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
die() { echo "install.sh: error: $*" >&2; exit 1; }

bindir=$prefix/bin
docdir=$prefix/share/doc/spamsink
mandir=$prefix/share/man
# systemd reads units from /usr/lib/systemd/system and /usr/local/lib/...;
# sysusers.d and tmpfiles.d likewise
libdir=$prefix/lib
d=$destdir

if ((uninstall)); then
	[[ -z $destdir ]] && [[ -d /run/systemd/system ]] &&
		{ systemctl disable --now spamsink.service 2>/dev/null || true; }
	rm -fv "$d$bindir/spamsink" "$d$bindir/smtpsend" "$d$libdir/systemd/system/spamsink.service" \
		"$d$libdir/systemd/system/spamsink@.service" \
		"$d$libdir/sysusers.d/spamsink.conf" "$d$libdir/tmpfiles.d/spamsink.conf" \
		"$d$mandir/man8/spamsink.8.gz" "$d$mandir/man5/spamsink.toml.5.gz" \
		"$d$mandir/man1/smtpsend.1.gz"
	rm -rfv "$d$docdir"
	[[ -z $destdir ]] && [[ -d /run/systemd/system ]] && systemctl daemon-reload
	echo "install.sh: kept $sysconfdir/spamsink, /var/lib/spamsink and the spamsink user"
	exit 0
fi

[[ -x $bin ]] || die "no spamsink binary at $bin (cmake --build build, or --bin FILE)"

install -d "$d$bindir" "$d$libdir/systemd/system" "$d$libdir/sysusers.d" \
	"$d$libdir/tmpfiles.d" "$d$sysconfdir/spamsink" "$d$docdir" \
	"$d$mandir/man1" "$d$mandir/man5" "$d$mandir/man8"
install_bin() {
	if ((strip)); then
		objcopy --strip-debug --strip-unneeded "$1" "$2.tmp"
		install -m 0755 "$2.tmp" "$2"
		rm -f "$2.tmp"
	else
		install -m 0755 "$1" "$2"
	fi
}
install_bin "$bin" "$d$bindir/spamsink"
[[ -x $smtpsend ]] && install_bin "$smtpsend" "$d$bindir/smtpsend"

for unit in spamsink.service spamsink@.service; do
	sed -e "s|@BINDIR@|$bindir|g" -e "s|@SYSCONFDIR@|$sysconfdir|g" -e "s|@DOCDIR@|$docdir|g" \
		"$here/systemd/$unit.in" >"$d$libdir/systemd/system/$unit"
	chmod 0644 "$d$libdir/systemd/system/$unit"
done
install -m 0644 "$here/systemd/spamsink.sysusers" "$d$libdir/sysusers.d/spamsink.conf"
install -m 0644 "$here/systemd/spamsink.tmpfiles" "$d$libdir/tmpfiles.d/spamsink.conf"

conf=$d$sysconfdir/spamsink/spamsink.toml
if [[ -e $conf ]]; then
	echo "install.sh: keeping the existing $conf (new default: $conf.dist)"
	install -m 0644 "$here/spamsink.toml" "$conf.dist"
else
	install -m 0640 "$here/spamsink.toml" "$conf"
fi
for f in docs/DEPLOY.md docs/API.md docs/CONFIGURATION.md docs/OPERATIONS.md \
	docs/TARPIT.md docs/SMTPSEND.md README.md; do
	[[ -f $repo/$f ]] && install -m 0644 "$repo/$f" "$d$docdir/"
done
# The manual pages, compressed as Debian ships them.
for page in docs/spamsink.8 docs/spamsink.toml.5 docs/smtpsend.1; do
	[[ -f $repo/$page ]] || continue
	sect=${page##*.}
	gzip -9 -n -c "$repo/$page" >"$d$mandir/man$sect/$(basename "$page").gz"
	chmod 0644 "$d$mandir/man$sect/$(basename "$page").gz"
done
[[ -f $repo/LICENSE ]] && install -m 0644 "$repo/LICENSE" "$d$docdir/copyright"

if [[ -z $destdir ]]; then
	if [[ $(id -u) == 0 ]]; then
		if ! getent passwd spamsink >/dev/null; then
			if command -v systemd-sysusers >/dev/null; then
				systemd-sysusers "$libdir/sysusers.d/spamsink.conf"
			else
				useradd --system --user-group --home-dir /var/lib/spamsink \
					--no-create-home --shell /usr/sbin/nologin spamsink
			fi
		fi
		install -d -m 0750 -o spamsink -g spamsink /var/lib/spamsink
		chgrp spamsink "$conf" # it may hold the API token: 0640 root:spamsink
		[[ -d /run/systemd/system ]] && systemctl daemon-reload
	fi
	echo "install.sh: installed; check the config, then: systemctl enable --now spamsink"
fi
