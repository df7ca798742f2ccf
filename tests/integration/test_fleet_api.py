"""`spamsink api`: a fleet's central read node (docs/FLEET.md).

Two sinks write to a private PostgreSQL cluster (test_fleet.PgCluster: a
Unix socket only, stopped by pid); a `spamsink api` process on the same
database, with no SMTP listener, shows their sources, fleet totals, the
per-sink breakdown and the `sink=` filter.
"""
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import SPAMSINK, Sink, transaction
from test_fleet import PASSWORD, PgCluster


class ApiNode(unittest.TestCase):
    def setUp(self):
        self.pg = PgCluster()
        self.addCleanup(self.pg.close)
        self.pg.sql("postgres", "CREATE DATABASE fleet")
        self.pwfile = os.path.join(self.pg.dir, "client-pw")
        with open(self.pwfile, "w") as f:
            f.write(PASSWORD + "\n")

    def config(self, sink_id):
        return ("[ledger]\nstore = \"postgresql\"\n"
                "postgresql_url = \"%s\"\npostgresql_password_file = \"%s\"\n"
                "sink_id = \"%s\"\n" % (self.pg.url("fleet"), self.pwfile,
                                        sink_id))

    def start_api(self):
        tmp = tempfile.TemporaryDirectory(prefix="spamsink-api-")
        self.addCleanup(tmp.cleanup)
        path = os.path.join(tmp.name, "spamsink.toml")
        with open(path, "w") as f:
            f.write(self.config("central"))
        log = open(os.path.join(tmp.name, "stderr.log"), "w+")
        self.addCleanup(log.close)
        proc = subprocess.Popen([SPAMSINK, "api", "--config", path,
                                 "--api-listen", "127.0.0.1:0"],
                                stdout=subprocess.DEVNULL, stderr=log)
        self.addCleanup(lambda: proc.poll() is None and
                        (proc.kill(), proc.wait(10)))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with open(log.name, errors="replace") as f:
                text = f.read()
            m = re.search(r"event=api_listening address=127\.0\.0\.1:(\d+)",
                          text)
            if m:
                return proc, int(m.group(1)), log.name
            self.assertIsNone(proc.poll(), text)
            time.sleep(0.05)
        with open(log.name, errors="replace") as f:
            self.fail("spamsink api did not start: " + f.read())

    def test_api_node_serves_the_writers_sources(self):
        a = Sink(config=self.config("sink-a"))
        self.addCleanup(a.close)
        b = Sink(config=self.config("sink-b"))
        self.addCleanup(b.close)
        for i in range(1, 6):
            self.assertTrue(transaction(a.port, "127.3.0.%d" % i)
                            .startswith("250"))
        for i in range(4, 9):  # 4 and 5 seen by both
            self.assertTrue(transaction(b.port, "127.3.0.%d" % i)
                            .startswith("250"))
        self.assertEqual(a.stop(), 0, a.stderr())  # flushed to the database
        self.assertEqual(b.stop(), 0, b.stderr())

        proc, port, log = self.start_api()

        def get(path):
            with urllib.request.urlopen("http://127.0.0.1:%d%s" %
                                        (port, path), timeout=10) as r:
                return json.load(r)
        page = get("/api/v1/sources?sort=ip&limit=100")
        self.assertEqual(page["total"], 8)
        self.assertEqual([s["ip"] for s in page["sources"]],
                         ["127.3.0.%d" % i for i in range(1, 9)])
        self.assertEqual(get("/api/v1/sources/127.3.0.4")["messages"], 2)
        self.assertEqual({s["sink_id"]: s["messages"] for s in
                          get("/api/v1/sources/127.3.0.5")["sinks"]},
                         {"sink-a": 1, "sink-b": 1})
        stats = get("/api/v1/stats")
        self.assertEqual(stats["totals"]["messages"], 10)
        self.assertEqual([s["sink_id"] for s in stats["sinks"]],
                         ["sink-a", "sink-b"])
        page = get("/api/v1/sources?sort=ip&sink=sink-b")
        self.assertEqual(page["sink"], "sink-b")
        self.assertEqual([s["ip"] for s in page["sources"]],
                         ["127.3.0.%d" % i for i in range(4, 9)])
        with urllib.request.urlopen(
                "http://127.0.0.1:%d/api/v1/export?format=plain&sink=sink-a"
                % port, timeout=10) as r:
            self.assertEqual(r.read().decode().split(),
                             ["127.3.0.%d" % i for i in range(1, 6)])
        self.assertEqual(get("/api/v1/sources?sink=nobody")["total"], 0)

        with open(log, errors="replace") as f:
            text = f.read()
        self.assertNotIn("event=listening", text)  # no SMTP listener
        self.assertIn("role=api", text)
        # It wrote nothing: no batch of its own in the database.
        self.assertEqual(self.pg.sql("fleet", "SELECT sink_id FROM "
                                     "sink_batches ORDER BY sink_id"),
                         [["sink-a"], ["sink-b"]])
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(20), 0)

    def test_api_node_refuses_a_sqlite_ledger(self):
        out = subprocess.run([SPAMSINK, "api", "--db", "/nonexistent/x.db"],
                             capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 1)
        self.assertIn("ledger.store", out.stderr)


if __name__ == "__main__":
    unittest.main()
