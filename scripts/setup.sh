#!/usr/bin/env bash
# Installs every Debian package the project needs to build, test and
# benchmark, if missing. Idempotent; run as root on Debian 12.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake ninja-build pkg-config clang clang-format
  libclang-rt-14-dev
  # libraries
  libasio-dev libssl-dev libsqlite3-dev libtomlplusplus-dev libcli11-dev
  libcpp-httplib-dev nlohmann-json3-dev libgtest-dev libgmock-dev liburing-dev
  libpq-dev libseccomp-dev
  # test peers and tools
  python3 swaks libnet-ssleay-perl libio-socket-ssl-perl libio-socket-inet6-perl
  curl msmtp postfix sqlite3 openssl procps iproute2 postgresql
  # differential tests: the real daemons' certificate and the scanner
  ssl-cert nmap
  nftables rbldnsd dnsutils gnuplot-nox
  # the DNSBL differential test and benchmark (docs/DNSBL.md)
  python3-dnspython dnsperf
  # the console: its chart library (embedded at build time) and the browser
  # its test drives over the DevTools protocol
  libjs-dygraphs chromium python3-websocket
  # the trap site: its word list, and the crawler that walks it in tests
  wamerican wget
  # the VM appliance (image/): initramfs, disk image, boot test, .deb
  busybox-static cpio lz4 xz-utils binutils file e2fsprogs qemu-system-x86
  qemu-utils ovmf dosfstools mtools syslinux syslinux-common fdisk
  systemd-boot-efi dpkg-dev
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages: ${missing[*]}" >&2
    echo "setup: run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  # Postfix is only here for smtp-sink/smtp-source; never configure it.
  echo "postfix postfix/main_mailer_type select No configuration" |
    debconf-set-selections
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || true
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# promtool (the tests check /metrics with `promtool check metrics`), from
# Debian's prometheus package unpacked into a cache: installing the package
# would start a Prometheus server on port 9090.
promdir=${SPAMSINK_TOOL_CACHE:-/var/cache/spamsink-tools}/prometheus
if [[ ! -x $promdir/usr/bin/promtool ]]; then
  tmp=$(mktemp -d)
  if (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1); then
    mkdir -p "$promdir"
    dpkg-deb -x "$tmp"/prometheus_*.deb "$promdir"
  else
    echo "setup: could not download prometheus (promtool); its test skips" >&2
  fi
  rm -rf "$tmp"
fi

# The differential tests (tests/differential) run the real Exim privately.
# Debian's MTAs conflict with each other (postfix is installed above), so
# Exim's daemon package is fetched and unpacked into a cache directory,
# never installed; its libraries are ordinary dependencies. Its binary
# looks up the Debian-exim user at start (exim4-base's postinst makes it).
MTA_CACHE=${SPAMSINK_MTA_CACHE:-/var/cache/spamsink-mta}
if [[ ! -x $MTA_CACHE/root/usr/sbin/exim4 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: run as root to unpack exim4 into $MTA_CACHE" >&2
    exit 1
  fi
  mkdir -p "$MTA_CACHE"
  (cd "$MTA_CACHE" && apt-get download -q exim4-daemon-light &&
    for deb in exim4-daemon-light_*.deb; do dpkg-deb -x "$deb" root; done)
  apt-get install -y -qq --no-install-recommends libgnutls30 libgnutls-dane0 \
    libpcre2-8-0 libdb5.3 libidn12 libidn2-0 libnsl2 libcrypt1 >/dev/null
fi
# Sendmail likewise (sendmail-bin conflicts with postfix and exim): its
# three packages unpacked into their own root; tests/differential runs it
# privately as root with Debian's sendmail.mc (no smmta user needed).
if [[ ! -x $MTA_CACHE/sendmail-root/usr/libexec/sendmail/sendmail ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: run as root to unpack sendmail into $MTA_CACHE" >&2
    exit 1
  fi
  mkdir -p "$MTA_CACHE"
  (cd "$MTA_CACHE" && apt-get download -q sendmail-bin sendmail-base \
    sendmail-cf && for deb in sendmail-bin_*.deb sendmail-base_*.deb \
    sendmail-cf_*.deb; do dpkg-deb -x "$deb" sendmail-root; done)
  apt-get install -y -qq --no-install-recommends m4 libwrap0 liblockfile1 \
    libldap-2.5-0 libsasl2-2 libdb5.3 libnsl2 >/dev/null
fi
if ! getent passwd Debian-exim >/dev/null; then
  adduser --system --group --quiet --home /var/spool/exim4 \
    --no-create-home --disabled-login --force-badname Debian-exim
fi
