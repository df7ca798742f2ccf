#!/usr/bin/env python3
"""10,000,000 addresses in the shared PostgreSQL ledger: API latency.

A benchmark program (not a test): starts a private PostgreSQL cluster
(initdb in a temporary directory, Unix socket only, stopped by pid), lets
`spamsink api` create the schema, fills `sources` (and one `source_sinks`
row per address) with N addresses by SQL (generate_series), then times
through the API (HTTP on loopback):
  - /api/v1/sources?limit=100 (top 100 by messages, the default sort)
  - /api/v1/sources?limit=100&sort=last_seen
  - /api/v1/sources/{ip} for random addresses
and prints median / p95 / max of each.

  bench/fleet_10m.py [--addresses 10000000] [--build build] [--rounds 50]
"""
import argparse
import glob
import json
import os
import pwd
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

PASSWORD = "bench-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            sys.exit("no PostgreSQL server installed (scripts/setup.sh)")
        self.bin = os.path.dirname(found[-1])
        self.dir = tempfile.mkdtemp(prefix="spamsink-pg10m-")
        self.uid = self.gid = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        if self.uid is not None:
            for p in (self.dir, pwfile):
                os.chown(p, self.uid, self.gid)
        self.log = open(os.path.join(self.dir, "log"), "a")
        subprocess.run([self.bin + "/initdb", "-D", self.dir + "/data", "-U",
                        "spamsink", "--auth=scram-sha-256",
                        "--pwfile=" + pwfile, "-E", "UTF8", "--no-sync"],
                       check=True, stdout=self.log, stderr=self.log,
                       preexec_fn=self.demote)
        self.proc = subprocess.Popen(
            [self.bin + "/postgres", "-D", self.dir + "/data", "-k", self.dir,
             "-p", "5432", "-c", "listen_addresses=", "-c",
             "shared_buffers=256MB", "-c", "max_wal_size=4GB"],
            stdout=self.log, stderr=self.log, preexec_fn=self.demote)
        for _ in range(600):
            if subprocess.run([self.bin + "/pg_isready", "-q", "-h", self.dir,
                               "-p", "5432"]).returncode == 0:
                return
            time.sleep(0.05)
        sys.exit("postgres did not start")

    def demote(self):
        if self.uid is not None:
            os.setgid(self.gid)
            os.setuid(self.uid)

    def url(self, db):
        return "host=%s port=5432 user=spamsink dbname=%s" % (self.dir, db)

    def sql(self, db, query):
        r = subprocess.run(
            [self.bin + "/psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
             "-c", query, self.url(db)], capture_output=True, text=True,
            env=dict(os.environ, PGPASSWORD=PASSWORD))
        if r.returncode != 0:
            sys.exit("psql: " + r.stderr)
        return r.stdout

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(60)
        subprocess.run(["rm", "-rf", self.dir])


# N addresses from 10.0.0.0 up (IPv4-mapped, as the store keeps them),
# counters spread so that sorts have work to do.
FILL = """
INSERT INTO sources (ip, first_seen, last_seen, connections,
  sessions_with_mail, transactions, messages, recipients, bytes,
  seconds_held, commands, helo_names, evidence)
SELECT decode('00000000000000000000ffff' || lpad(to_hex(167772160 + i), 8,
              '0'), 'hex'),
       1.7e9 + (i %% 86400), 1.7e9 + 86400 + (i %% 604800),
       1 + i %% 7, 1, 1 + i %% 13, (i * 7919) %% 100003, 2,
       1000 + (i * 104729) %% 5000000, (i %% 300)::float8, 8,
       '[["bot",1]]', (i %% 3 = 0)::int
FROM generate_series(0::bigint, %d) AS i;
INSERT INTO source_sinks (ip, sink_id, first_seen, last_seen, connections,
  messages, bytes)
SELECT ip, 'sink-' || (get_byte(ip, 15) %% 3), first_seen, last_seen,
       connections, messages, bytes FROM sources;
UPDATE totals SET sources = s.n, connections = s.c, messages = s.m,
  bytes = s.b FROM (SELECT count(*) n, sum(connections) c, sum(messages) m,
  sum(bytes) b FROM sources) s WHERE id = 1;
"""


def timed_get(url, token):
    req = urllib.request.Request(url, headers={"Authorization":
                                               "Bearer " + token})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as r:
        body = r.read()
    return (time.perf_counter() - t0) * 1000, json.loads(body)


def summary(name, ms):
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    print("%-44s median %7.2f ms  p95 %7.2f ms  max %7.2f ms  (n=%d)" %
          (name, statistics.median(ms), p95, ms[-1], len(ms)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addresses", type=int, default=10_000_000)
    ap.add_argument("--build", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "build"))
    ap.add_argument("--rounds", type=int, default=50)
    a = ap.parse_args()
    pg = Cluster()
    api = None
    tmp = tempfile.TemporaryDirectory(prefix="spamsink-10m-")
    try:
        pg.sql("postgres", "CREATE DATABASE fleet")
        pwfile = os.path.join(tmp.name, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        port, token = free_port(), "bench-token-0123456789"
        cfg = os.path.join(tmp.name, "api.toml")
        with open(cfg, "w") as f:
            f.write("[ledger]\nstore = \"postgresql\"\npostgresql_url = "
                    "\"%s\"\npostgresql_password_file = \"%s\"\n"
                    "sink_id = \"central\"\n[api]\nenabled = true\n"
                    "listen = \"127.0.0.1:%d\"\ntoken = \"%s\"\n" %
                    (pg.url("fleet"), pwfile, port, token))
        log = open(os.path.join(tmp.name, "api.log"), "w")
        api = subprocess.Popen([os.path.join(a.build, "spamsink"), "api",
                                "--config", cfg], stdout=log, stderr=log,
                               cwd=tmp.name)
        base = "http://127.0.0.1:%d" % port
        for _ in range(600):
            try:
                timed_get(base + "/api/v1/stats", token)
                break
            except Exception:
                time.sleep(0.05)
        t0 = time.monotonic()
        # Secondary indexes are dropped for the fill and built again after
        # (one sort each instead of 10M insertions each), as spamsink made
        # them.
        defs = [l for l in pg.sql(
            "fleet", "SELECT indexdef FROM pg_indexes WHERE tablename IN "
            "('sources', 'source_sinks') AND indexname NOT LIKE '%pkey'")
            .splitlines() if l]
        for d in defs:
            pg.sql("fleet", "DROP INDEX " + d.split()[2])
        pg.sql("fleet", FILL % (a.addresses - 1))
        for d in defs:
            pg.sql("fleet", "SET maintenance_work_mem = '512MB'; " + d)
        pg.sql("fleet", "VACUUM ANALYZE sources")
        pg.sql("fleet", "VACUUM ANALYZE source_sinks")
        print("filled %d addresses (+ source_sinks, VACUUM ANALYZE) in %.0f s"
              % (a.addresses, time.monotonic() - t0))
        print(pg.sql("fleet", "SELECT pg_size_pretty(pg_database_size("
                     "'fleet'))").strip(), "database")
        for path in ("/api/v1/sources?limit=100",
                     "/api/v1/sources?limit=100&sort=last_seen"):
            timed_get(base + path, token)  # warm
            ms = []
            for _ in range(a.rounds):
                t, j = timed_get(base + path, token)
                ms.append(t)
            assert len(j["sources"]) == 100, j
            summary("GET " + path, ms)
        rnd = random.Random(1)
        ms = []
        for _ in range(a.rounds):
            i = rnd.randrange(a.addresses)
            ip = "%d.%d.%d.%d" % (10 + (i >> 24), (i >> 16) & 255,
                                  (i >> 8) & 255, i & 255)
            t, j = timed_get(base + "/api/v1/sources/" + ip, token)
            ms.append(t)
        summary("GET /api/v1/sources/{ip} (random)", ms)
        print("EXPLAIN top-100:")
        print(pg.sql("fleet", "EXPLAIN (ANALYZE, BUFFERS) SELECT ip FROM "
                     "sources ORDER BY messages DESC, ip ASC LIMIT 100"))
    finally:
        if api and api.poll() is None:
            api.send_signal(signal.SIGTERM)
            api.wait(30)
        pg.close()
        tmp.cleanup()


if __name__ == "__main__":
    main()
