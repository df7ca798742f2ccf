#!/bin/sh
# The appliance's libpq stub (build/appliance/libpq.so.5, which
# image/build.sh puts in the VM in place of Debian's libpq): the same
# spamsink binary loads it, and with it refuses the PostgreSQL store as a
# config error naming the setting; with Debian's libpq the same file passes
# --check-config. A ctest (appliance_libpq_stub); well under a second.
#
# Usage: image/check-libpq-stub.sh SPAMSINK_BINARY STUB_DIRECTORY
set -u
bin=$1 stubdir=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '[ledger]\nstore = "postgresql"\npostgresql_url = "host=127.0.0.1 dbname=spamsink"\n' >"$tmp/pg.toml"
fail=0
lib=$(LD_LIBRARY_PATH=$stubdir ldd "$bin" | awk '/libpq\.so\.5 =>/{print $3}')
case "$lib" in
"$stubdir"/*) echo "ok: with LD_LIBRARY_PATH=$stubdir, spamsink loads $lib" ;;
*) echo "FAIL: spamsink does not load the stub (libpq.so.5 => ${lib:-nothing})"; fail=1 ;;
esac
if out=$(LD_LIBRARY_PATH=$stubdir "$bin" --config "$tmp/pg.toml" --check-config 2>&1); then
	echo "FAIL: with the stub, --check-config accepted store = \"postgresql\": $out"
	fail=1
elif printf '%s\n' "$out" | grep -q 'ledger.store: this build has no PostgreSQL support'; then
	echo "ok: with the stub: $(printf '%s\n' "$out" | grep -m1 'no PostgreSQL support')"
else
	echo "FAIL: with the stub, an error without the expected words: $out"
	fail=1
fi
if out=$("$bin" --config "$tmp/pg.toml" --check-config 2>&1); then
	echo "ok: with Debian's libpq the same config passes --check-config"
else
	echo "FAIL: with Debian's libpq: $out"
	fail=1
fi
exit $fail
