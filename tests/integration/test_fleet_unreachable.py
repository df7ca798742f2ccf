"""A sink started while its PostgreSQL is unreachable (docs/FLEET.md).

The private cluster (test_fleet.PgCluster) is stopped before the sink
starts: the sink serves SMTP at once, logs event=ledger_unavailable naming
ledger.postgresql_url (never the password), keeps the records, and once the
server is started writes every one of them exactly once. A wrong password
with the server up still refuses to start, naming the setting.
"""
import os
import tempfile
import time
import unittest

from harness import Sink, transaction
from test_fleet import PASSWORD, PgCluster, v4_hex


def address(i):
    return "127.5.%d.%d" % (i // 250, 1 + i % 250)


class Unreachable(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster()  # one initdb for both tests
        cls.pg.sql("postgres", "CREATE DATABASE fleet")

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()

    def setUp(self):
        self.pg.start()
        self.tmp = tempfile.TemporaryDirectory(prefix="spamsink-unreach-")
        self.addCleanup(self.tmp.cleanup)

    def config(self, password):
        pwfile = os.path.join(self.tmp.name, "pw")
        with open(pwfile, "w") as f:
            f.write(password + "\n")
        return ("[ledger]\nstore = \"postgresql\"\n"
                "postgresql_url = \"%s\"\npostgresql_password_file = \"%s\"\n"
                "sink_id = \"sink-u\"\nspill_path = \"%s\"\n" %
                (self.pg.url("fleet"), pwfile,
                 os.path.join(self.tmp.name, "sink.spill")))

    def test_starts_serving_then_writes_everything_once_the_database_is_up(self):
        self.pg.stop()
        sink = Sink(config=self.config(PASSWORD))
        self.addCleanup(sink.close)
        want = {}
        for i in range(150):
            self.assertTrue(transaction(sink.port, address(i))
                            .startswith("250"))
            want[address(i)] = want.get(address(i), 0) + 1
        log = sink.stderr()
        self.assertIn("event=ledger_unavailable", log)
        self.assertIn("ledger.postgresql_url", log)
        self.assertNotIn(PASSWORD, log)

        self.pg.start()
        total = sum(want.values())

        def committed():
            rows = self.pg.sql("fleet", "SELECT coalesce(sum(connections), 0) "
                               "FROM sources")
            return int(rows[0][0]) if rows else 0

        # Reconnection backs off up to 8 s between attempts.
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                if committed() >= total:
                    break
            except Exception:  # the schema is not there before the sink's
                pass
            time.sleep(0.1)
        self.assertEqual(sink.stop(), 0, sink.stderr())
        got = {r[0]: int(r[1]) for r in self.pg.sql(
            "fleet", "SELECT encode(ip, 'hex'), connections FROM sources")}
        self.assertEqual(got, {v4_hex(ip): n for ip, n in want.items()})
        per_sink = self.pg.sql("fleet", "SELECT sum(connections) FROM "
                               "source_sinks WHERE sink_id = 'sink-u'")
        self.assertEqual(int(per_sink[0][0]), total)
        log = sink.stderr()
        self.assertIn("event=ledger_store_recovered", log)
        self.assertNotIn(PASSWORD, log)

    def test_a_wrong_password_with_the_server_up_refuses_to_start(self):
        with self.assertRaises(RuntimeError) as e:
            Sink(config=self.config("not-the-password"))
        self.assertIn("ledger.postgresql_url", str(e.exception))
        self.assertIn("password authentication failed", str(e.exception))
        self.assertNotIn("not-the-password", str(e.exception))


if __name__ == "__main__":
    unittest.main()
