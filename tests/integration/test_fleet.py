"""Three spamsink processes sharing one PostgreSQL ledger (docs/FLEET.md).

A private PostgreSQL cluster: initdb into a temporary directory (as the
postgres user when run as root), a server on a Unix socket in that directory
only, stopped by its pid. 600 sender addresses of 127.0.0.0/8 spread over
three sinks on three loopback ports; the server is stopped and started again
in the middle of the load. Every per-address and per-sink count in the
database and through the API is exact.
"""
import glob
import json
import os
import pwd
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from harness import Sink, transaction

PASSWORD = "fleet-test-secret"


def pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise unittest.SkipTest("no PostgreSQL server installed "
                                "(scripts/setup.sh installs one)")
    return os.path.dirname(found[-1])


class PgCluster:
    def __init__(self):
        self.bin = pg_bin()
        self.dir = tempfile.mkdtemp(prefix="spamsink-pg-")
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
                       preexec_fn=self._demote, timeout=120)
        self.proc = None
        self.extra = []  # more server options (-c name=value ...)
        self.port = 5432  # the socket's name; TCP too with listen_addresses
        self.start()

    def _demote(self):
        if self.uid is not None:
            os.setgid(self.gid)
            os.setuid(self.uid)

    def start(self):
        if self.proc and self.proc.poll() is None:
            return  # running already
        self.proc = subprocess.Popen(
            [self.bin + "/postgres", "-D", self.dir + "/data", "-k", self.dir,
             "-p", str(self.port), "-c", "listen_addresses=", "-c",
             "fsync=off"] +
            self.extra,
            stdout=self.log, stderr=self.log, preexec_fn=self._demote)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = subprocess.run([self.bin + "/pg_isready", "-q", "-h", self.dir,
                                "-p", str(self.port)])
            if r.returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("postgres did not start")

    def stop(self):
        """Fast shutdown of the server we started, by pid."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(30)

    def url(self, db):
        return "host=%s port=%d user=spamsink dbname=%s" % (self.dir,
                                                            self.port, db)

    def sql(self, db, query):
        out = subprocess.run(
            [self.bin + "/psql", "-X", "-q", "-At", "-F", "|", "-c", query,
             self.url(db)], capture_output=True, text=True, timeout=60,
            env=dict(os.environ, PGPASSWORD=PASSWORD), check=True)
        return [l.split("|") for l in out.stdout.splitlines() if l]

    def close(self):
        self.stop()
        self.log.close()
        subprocess.run(["rm", "-rf", self.dir])


def visits(i, k):
    """How many sessions address i opens at sink k per round."""
    return 0 if (i + k) % 3 == 0 else (i % 3 + k) % 2 + 1


def address(i):
    return "127.2.%d.%d" % (i // 250, 1 + i % 250)


def v4_hex(ip):
    return "00" * 10 + "ffff" + "".join("%02x" % int(p) for p in ip.split("."))


class Fleet(unittest.TestCase):
    ADDRESSES = 600
    ROUNDS = 2

    def setUp(self):
        self.pg = PgCluster()
        self.addCleanup(self.pg.close)
        self.pg.sql("postgres", "CREATE DATABASE fleet")
        pwfile = os.path.join(self.pg.dir, "client-pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        self.sinks = []
        for k in range(3):
            config = ("[ledger]\nstore = \"postgresql\"\n"
                      "postgresql_url = \"%s\"\n"
                      "postgresql_password_file = \"%s\"\n"
                      "sink_id = \"sink-%d\"\n" %
                      (self.pg.url("fleet"), pwfile, k))
            s = Sink("--api-enabled", "true", "--api-listen", "127.0.0.1:0",
                     config=config)
            self.addCleanup(s.close)
            m = re.search(r"event=api_listening address=127\.0\.0\.1:(\d+)",
                          s.stderr())
            self.assertIsNotNone(m, s.stderr())
            s.api = int(m.group(1))
            self.sinks.append(s)

    def load(self):
        def one(k):
            for i in range(self.ADDRESSES):
                for _ in range(visits(i, k)):
                    final = transaction(self.sinks[k].port, address(i))
                    assert final.startswith("250"), final
        threads = [threading.Thread(target=one, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def api(self, k, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" %
                                    (self.sinks[k].api, path),
                                    timeout=10) as r:
            return json.load(r)

    def test_three_sinks_exact_through_an_outage(self):
        self.load()
        self.pg.stop()
        self.load()  # the sinks keep serving while the database is down
        self.pg.start()
        self.assertTrue(any("event=ledger_store_failed" in s.stderr()
                            for s in self.sinks), "no sink saw the outage")
        want_total = sum(visits(i, k) * self.ROUNDS
                         for i in range(self.ADDRESSES) for k in range(3))
        deadline = time.monotonic() + 60
        totals = None
        while time.monotonic() < deadline:
            totals = self.api(1, "/api/v1/stats")["totals"]
            if totals["connections"] >= want_total:
                break
            time.sleep(0.1)
        self.assertEqual(totals["connections"], want_total)
        self.assertEqual(totals["sources"], self.ADDRESSES)
        self.assertEqual(totals["messages"], want_total)

        rows = self.pg.sql("fleet", "SELECT encode(ip, 'hex'), sink_id, "
                           "connections, messages FROM source_sinks")
        got = {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}
        want = {}
        for i in range(self.ADDRESSES):
            for k in range(3):
                n = visits(i, k) * self.ROUNDS
                if n:
                    want[(v4_hex(address(i)), "sink-%d" % k)] = (n, n)
        self.assertEqual(got, want)
        per_address = {r[0]: int(r[1]) for r in self.pg.sql(
            "fleet", "SELECT encode(ip, 'hex'), connections FROM sources")}
        self.assertEqual(len(per_address), self.ADDRESSES)
        for i in range(self.ADDRESSES):
            self.assertEqual(per_address[v4_hex(address(i))],
                             sum(visits(i, k) * self.ROUNDS
                                 for k in range(3)), address(i))
        # Through any sink's API, for a sample of addresses, with the
        # per-sink breakdown.
        for i in range(0, self.ADDRESSES, 37):
            rec = self.api(i % 3, "/api/v1/sources/" + address(i))
            self.assertEqual(rec["connections"],
                             sum(visits(i, k) * self.ROUNDS
                                 for k in range(3)), address(i))
            self.assertEqual(
                {s["sink_id"]: s["connections"] for s in rec["sinks"]},
                {"sink-%d" % k: visits(i, k) * self.ROUNDS
                 for k in range(3) if visits(i, k)}, address(i))
        per_sink = {}
        for (_, sink), (n, _) in want.items():
            per_sink[sink] = per_sink.get(sink, 0) + n
        stats = self.api(2, "/api/v1/stats")
        self.assertEqual({s["sink_id"]: s["connections"]
                          for s in stats["sinks"]}, per_sink)
        for s in self.sinks:
            self.assertEqual(s.stop(), 0, s.stderr())


if __name__ == "__main__":
    unittest.main()
