#!/usr/bin/env bash
# Builds the Debian package of spamsink with dpkg-deb and dpkg-shlibdeps:
#   build-image/spamsink_VERSION-1_ARCH.deb
# from an existing build (build/spamsink, build/smtpsend if built), laid out
# by image/install.sh --prefix /usr. Install it with
#   apt install ./build-image/spamsink_*.deb
# It creates the user spamsink, enables and starts spamsink.service (whose
# default config listens on loopback only), and keeps /etc/spamsink/
# spamsink.toml as a conffile. `apt purge spamsink` removes the ledger too.
#
# Usage: image/mkdeb.sh [--bin FILE] [--smtpsend FILE] [--out DIR]
#          [--revision N]
# Environment: DEBFULLNAME, DEBEMAIL (the Maintainer field), SOURCE_DATE_EPOCH.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
bin=$repo/build/spamsink smtpsend=$repo/build/smtpsend out=$repo/build-image revision=1
while (($#)); do
	case "$1" in
	--bin) bin=$2; shift ;;
	--smtpsend) smtpsend=$2; shift ;;
	--out) out=$2; shift ;;
	--revision) revision=$2; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "mkdeb.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
die() { echo "mkdeb.sh: error: $*" >&2; exit 1; }
for tool in dpkg-deb dpkg-shlibdeps dpkg-architecture; do
	command -v "$tool" >/dev/null || die "$tool not found (apt-get install dpkg-dev)"
done
[[ -x $bin ]] || die "no spamsink binary at $bin (cmake --build build)"

version=$(sed -n 's/^project(spamsink VERSION \([0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")
[[ -n $version ]] || die "cannot read the version from CMakeLists.txt"
version=$version-$revision
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
maintainer="${DEBFULLNAME:-spamsink developers} <${DEBEMAIL:-spamsink@localhost}>"

mkdir -p "$out"
work=$(mktemp -d "$out/deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
"$here/install.sh" --destdir "$root" --prefix /usr --sysconfdir /etc --strip \
	--bin "$bin" --smtpsend "$smtpsend" >/dev/null
# Debian layout: units in /lib/systemd/system (bookworm's debhelper does so)
mkdir -p "$root/lib/systemd"
mv "$root/usr/lib/systemd/system" "$root/lib/systemd/system"
rmdir "$root/usr/lib/systemd"
chmod 0644 "$root/etc/spamsink/spamsink.toml" # 0640 root:spamsink in postinst
install -d "$root/usr/share/doc/spamsink"
cat >"$work/changelog" <<EOF
spamsink ($version) unstable; urgency=medium

  * Package built by image/mkdeb.sh from $(git -C "$repo" describe --always --dirty 2>/dev/null || echo "a work tree").

 -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
EOF
gzip -9 -n -c "$work/changelog" >"$root/usr/share/doc/spamsink/changelog.Debian.gz"
if [[ ! -f $root/usr/share/doc/spamsink/copyright ]]; then
	printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: spamsink\n\nFiles: *\nCopyright: the spamsink developers\nLicense: see the source repository\n' \
		>"$root/usr/share/doc/spamsink/copyright"
fi

# ---- shared library dependencies, the Debian way ----
mkdir -p "$work/src/debian"
printf 'Source: spamsink\n\nPackage: spamsink\nArchitecture: any\n' >"$work/src/debian/control"
exes=("$root/usr/bin/spamsink")
[[ -f $root/usr/bin/smtpsend ]] && exes+=("$root/usr/bin/smtpsend")
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O "${exes[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[[ -n $shlibs ]] || die "dpkg-shlibdeps found no dependencies"

mkdir -p "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<EOF
Package: spamsink
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $shlibs, adduser | systemd
Section: mail
Priority: optional
Description: SMTP spam sink: a memory hole for spam
 spamsink answers as a believable mail server on spare addresses, MX
 records and spamtrap addresses, swallows everything it is sent, holds
 senders as long as it can, and keeps a per-IP record of every sender,
 published over an HTTP API and as blocklists (rbldnsd, nftables, Postfix).
 It never relays and never bounces. smtpsend, its load generator, is
 included.
EOF
echo /etc/spamsink/spamsink.toml >"$root/DEBIAN/conffiles"

cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
	if ! getent passwd spamsink >/dev/null; then
		if command -v systemd-sysusers >/dev/null; then
			systemd-sysusers /usr/lib/sysusers.d/spamsink.conf
		else
			adduser --system --group --home /var/lib/spamsink --no-create-home \
				--gecos "spamsink SMTP spam sink" spamsink >/dev/null
		fi
	fi
	install -d -m 0750 -o spamsink -g spamsink /var/lib/spamsink
	# the config may hold the API token
	if ! dpkg-statoverride --list /etc/spamsink/spamsink.toml >/dev/null; then
		chown root:spamsink /etc/spamsink/spamsink.toml
		chmod 0640 /etc/spamsink/spamsink.toml
	fi
fi
if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then
	if command -v deb-systemd-helper >/dev/null; then
		if deb-systemd-helper --quiet was-enabled spamsink.service; then
			deb-systemd-helper enable spamsink.service >/dev/null || true
		else
			deb-systemd-helper update-state spamsink.service >/dev/null || true
		fi
	fi
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "$2" ]; then action=restart; else action=start; fi
		deb-systemd-invoke $action spamsink.service >/dev/null || true
	fi
fi
exit 0
EOF
cat >"$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	deb-systemd-invoke stop spamsink.service >/dev/null || true
fi
exit 0
EOF
cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = remove ] && command -v deb-systemd-helper >/dev/null; then
	deb-systemd-helper mask spamsink.service >/dev/null || true
fi
if [ "$1" = purge ]; then
	if command -v deb-systemd-helper >/dev/null; then
		deb-systemd-helper purge spamsink.service >/dev/null || true
		deb-systemd-helper unmask spamsink.service >/dev/null || true
	fi
	# the ledger; the user stays (Debian policy)
	rm -rf /var/lib/spamsink
fi
exit 0
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z |
	xargs -0 md5sum) >"$root/DEBIAN/md5sums"

deb=$out/spamsink_${version}_$arch.deb
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "mkdeb.sh: $deb ($(stat -c %s "$deb") bytes)"
echo "mkdeb.sh: install with: apt install $deb"
