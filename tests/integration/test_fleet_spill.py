"""The spill file across a restart with PostgreSQL down (docs/FLEET.md).

A sink on a private PostgreSQL cluster (test_fleet.PgCluster): the server
is stopped, the sink takes more sources than ledger.max_pending_bytes holds
(they spill to disk), gets SIGTERM (the unconfirmed batch and the rest
spill too), the server is started again and the sink restarted: every
count is exact, nothing lost, nothing doubled, the spill files gone.
"""
import os
import re
import tempfile
import time
import unittest

from harness import Sink, transaction
from test_fleet import PASSWORD, PgCluster, v4_hex


def address(i):
    return "127.4.%d.%d" % (i // 250, 1 + i % 250)


class SpillRestart(unittest.TestCase):
    def test_sigterm_with_the_database_down_then_restart(self):
        pg = PgCluster()
        self.addCleanup(pg.close)
        pg.sql("postgres", "CREATE DATABASE fleet")
        tmp = tempfile.TemporaryDirectory(prefix="spamsink-spill-")
        self.addCleanup(tmp.cleanup)
        pwfile = os.path.join(tmp.name, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        spill = os.path.join(tmp.name, "sink.spill")
        config = ("[ledger]\nstore = \"postgresql\"\n"
                  "postgresql_url = \"%s\"\npostgresql_password_file = \"%s\"\n"
                  "sink_id = \"sink-s\"\nspill_path = \"%s\"\n"
                  "max_pending_bytes = 65536\n" %
                  (pg.url("fleet"), pwfile, spill))
        want = {}

        def send(sink, addresses):
            for i in addresses:
                self.assertTrue(transaction(sink.port, address(i))
                                .startswith("250"))
                want[address(i)] = want.get(address(i), 0) + 1

        def committed():
            rows = pg.sql("fleet", "SELECT coalesce(sum(connections), 0) "
                          "FROM sources")
            return int(rows[0][0])

        a = Sink(config=config)
        self.addCleanup(a.close)
        send(a, range(100))
        deadline = time.monotonic() + 30
        while committed() < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(committed(), 100)
        pg.stop()
        send(a, range(50, 650))  # 600 sources: more than 64 KiB of memory
        self.assertEqual(a.stop(), 0, a.stderr())
        log = a.stderr()
        self.assertIn("event=ledger_spilling", log)
        self.assertIn("event=ledger_close_spilled", log)
        self.assertNotIn("event=ledger_close_lost", log)
        self.assertTrue(os.path.exists(spill))

        pg.start()
        b = Sink(config=config)
        self.addCleanup(b.close)
        total = sum(want.values())
        deadline = time.monotonic() + 60
        while committed() < total and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(b.stop(), 0, b.stderr())
        self.assertEqual(committed(), total)
        got = {r[0]: int(r[1]) for r in pg.sql(
            "fleet", "SELECT encode(ip, 'hex'), connections FROM sources")}
        self.assertEqual(got, {v4_hex(ip): n for ip, n in want.items()})
        per_sink = pg.sql("fleet", "SELECT sum(connections) FROM source_sinks "
                          "WHERE sink_id = 'sink-s'")
        self.assertEqual(int(per_sink[0][0]), total)
        self.assertIn("event=ledger_spill_sent", b.stderr())
        for suffix in ("", ".pos", ".batch"):
            self.assertFalse(os.path.exists(spill + suffix), suffix)


if __name__ == "__main__":
    unittest.main()
