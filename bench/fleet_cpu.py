#!/usr/bin/env python3
"""Server CPU per message with the PostgreSQL store against SQLite.

A benchmark program (not a test): starts a private PostgreSQL cluster
(tests/integration/test_fleet.PgCluster: initdb in a temporary directory,
Unix socket only, stopped by pid), then runs bench/run.py's "1KiB 100x1"
cell (smtpsend -s 100 -m 1 -b 1024) alternately against spamsink with the
default SQLite ledger and with ledger.store = "postgresql", ROUNDS times
each, and prints run.py's lines (messages per spamsink CPU-second). The
PostgreSQL server's own CPU is not in the figure (it is another process,
as SQLite's work is not: SQLite runs inside spamsink's writer thread).

  bench/fleet_cpu.py [--rounds 3] [--cell "1KiB 100x1"]
"""
import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from test_fleet import PASSWORD, PgCluster  # noqa: E402

DEFAULT_ARGS = ("--tarpit-enabled false --server-max-connections-per-ip "
                "100000 --server-max-connections 100000 --api-enabled false "
                "--log-sessions false")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cell", default="1KiB 100x1")
    a = ap.parse_args()
    pg = PgCluster()
    tmp = tempfile.TemporaryDirectory(prefix="spamsink-fleetcpu-")
    try:
        pg.sql("postgres", "CREATE DATABASE fleet")
        pw = os.path.join(tmp.name, "pw")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        cfg = os.path.join(tmp.name, "pg.toml")
        with open(cfg, "w") as f:
            f.write("[ledger]\nstore = \"postgresql\"\npostgresql_url = "
                    "\"%s\"\npostgresql_password_file = \"%s\"\n"
                    "sink_id = \"bench\"\n" % (pg.url("fleet"), pw))
        for r in range(a.rounds):
            for name, extra in (("sqlite", ""), ("postgresql",
                                                 " --config " + cfg)):
                out = subprocess.run(
                    [sys.executable, os.path.join(ROOT, "bench", "run.py"),
                     "--only", a.cell, "--repeats", "1", "--no-write",
                     "--spamsink-args", DEFAULT_ARGS + extra],
                    capture_output=True, text=True)
                for line in (out.stdout + out.stderr).splitlines():
                    if "msg/cpu-s" in line and "spamsink " in line + " ":
                        print("round %d %-10s %s" % (r + 1, name, line.strip()))
                        sys.stdout.flush()
    finally:
        pg.close()
        tmp.cleanup()


if __name__ == "__main__":
    main()
