#!/usr/bin/env python3
"""Generates a big SQLite ledger fast, for the figures of issue 13.

    bench/gen_ledger.py --db PATH --sources N [--v6-percent 20]
                        [--build build]

The schema comes from spamsink itself (build/export_bench --sources 0 opens
the store, which runs every migration); the rows are then inserted by one
SQL statement per address family, indexes dropped first and rebuilt after
(sorted builds: about 10x faster than maintaining six indexes row by row).
Sources were first seen within the last two days (else the server's
retention sweep would delete them at its first start). IPv4 sources are
10.0.0.0 upwards; IPv6 sources are /64 networks under
2001:db8::/32 (what the store keeps with ledger.ipv6_prefix = 64). Each has a
HELO name, a MAIL FROM domain and a RCPT domain, like export_bench's.
The totals row is set to the sums. Prints the time and the file's size.
A program that prints figures, not a test.
"""
import argparse
import os
import sqlite3
import struct
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ROW = """
  {ip}, {t0} + (i % 86400), {t0} + (i % 86400) + 60 + (i % 3600),
  1 + i % 7, 1, 1 + i % 3, 1 + i % 3, 2 * (1 + i % 3), 1000 * (1 + i % 3),
  30.0, 6, i % 4 = 0, 0, 0, i % 11 = 0, 0, i % 13 = 0, 0, 0, 0, 0,
  (CASE WHEN i % 11 = 0 THEN 1 ELSE 0 END) | (CASE WHEN i % 13 = 0 THEN 4 ELSE 0 END),
  '{{"quit":' || (1 + i % 7) || '}}',
  '[["host' || (i % 1000) || '.example",1]]',
  '[["spam' || (i % 97) || '.example",1]]',
  '[["example.org",' || (1 + i % 3) || ']]',
  i % 5 = 0, CASE WHEN i % 5 = 0 THEN 12.5 ELSE 0.0 END, 0, 0,
  ''
"""


def ip4(i):
    return b"\0" * 10 + b"\xff\xff" + struct.pack(">I", 0x0A000000 + i)


def ip6(i):
    return b"\x20\x01\x0d\xb8" + struct.pack(">I", i) + b"\0" * 8


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--sources", type=int, required=True)
    ap.add_argument("--v6-percent", type=int, default=20)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    a = ap.parse_args()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(a.db + suffix):
            os.unlink(a.db + suffix)
    t0 = time.monotonic()
    # the schema, by spamsink's own migrations (an empty store)
    subprocess.run([os.path.join(a.build, "export_bench"), "--sources", "0",
                    "--db", a.db, "--formats", "plain"], check=True,
                   stdout=subprocess.DEVNULL)
    db = sqlite3.connect(a.db, isolation_level=None)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -262144")  # 256 MiB
    db.create_function("ip4", 1, ip4, deterministic=True)
    db.create_function("ip6", 1, ip6, deterministic=True)
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
        "AND tbl_name = 'sources' AND sql IS NOT NULL").fetchall()
    for name, _ in indexes:
        db.execute(f"DROP INDEX {name}")
    # seen within the last two days: inside any retention (an older ledger
    # would be expired, all of it, by the server's first sweep)
    t_base = int(time.time()) - 2 * 86400
    n6 = a.sources * a.v6_percent // 100
    n4 = a.sources - n6
    db.execute("BEGIN")
    for fn, n in (("ip4", n4), ("ip6", n6)):
        if n == 0:
            continue
        db.execute(
            "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c "
            f"WHERE i < {n - 1}) INSERT INTO sources SELECT "
            + ROW.format(ip=f"{fn}(i)", t0=t_base) + " FROM c")
    db.execute("COMMIT")
    t_rows = time.monotonic() - t0
    for name, sql in indexes:
        db.execute(sql)
    db.execute(
        "UPDATE totals SET (sources, connections, messages, recipients, "
        "bytes, seconds_held) = (SELECT count(*), sum(connections), "
        "sum(messages), sum(recipients), sum(bytes), sum(seconds_held) "
        "FROM sources) WHERE id = 1")
    db.execute("PRAGMA journal_mode = WAL")
    db.close()
    size = os.path.getsize(a.db)
    print(f"generated {a.sources} sources ({n4} IPv4, {n6} IPv6 /64) into "
          f"{a.db}: rows {t_rows:.1f} s, total {time.monotonic() - t0:.1f} s, "
          f"{size / 1048576:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
