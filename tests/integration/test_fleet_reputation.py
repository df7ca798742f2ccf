"""Fleet-wide reputation (docs/FLEET.md): a sender seen at sink A is known
at sink B within about one writer flush plus one refresh (2 s).

Two sinks on a private PostgreSQL cluster (test_fleet.PgCluster), the
tarpit on with new senders accepted and returning ones tempfailed: a sender
whose only session was at A gets 451 at its first session at B, once B's
follower has pulled; a sender never seen gets 250. The delay from A's
session to B's pull is printed (a figure, not a bound beyond 15 s).
"""
import os
import re
import sys
import tempfile
import time
import unittest

from harness import Sink, transaction
from test_fleet import PASSWORD, PgCluster


class Reputation(unittest.TestCase):
    def test_sender_seen_at_a_is_returning_at_b(self):
        pg = PgCluster()
        self.addCleanup(pg.close)
        pg.sql("postgres", "CREATE DATABASE fleet")
        tmp = tempfile.TemporaryDirectory(prefix="spamsink-rep-")
        self.addCleanup(tmp.cleanup)
        pwfile = os.path.join(tmp.name, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")

        def config(sink_id):
            return ("[ledger]\nstore = \"postgresql\"\n"
                    "postgresql_url = \"%s\"\n"
                    "postgresql_password_file = \"%s\"\n"
                    "sink_id = \"%s\"\n"
                    "[tarpit]\nenabled = true\nstutter = false\n"
                    "max_delay = 0.01\nverdict_new = \"accept\"\n"
                    "verdict_returning = \"tempfail\"\n" %
                    (pg.url("fleet"), pwfile, sink_id))
        a = Sink(config=config("sink-a"))
        self.addCleanup(a.close)
        b = Sink("--log-level", "debug", config=config("sink-b"))
        self.addCleanup(b.close)

        self.assertTrue(transaction(a.port, "127.5.0.1").startswith("250"))
        t0 = time.monotonic()  # the session at A has ended
        t1 = None
        while time.monotonic() - t0 < 15:
            if re.search(r"event=reputation_pulled sources=[1-9]",
                         b.stderr()):
                t1 = time.monotonic()
                break
            time.sleep(0.02)
        self.assertIsNotNone(t1, "sink B never pulled: " + b.stderr()[-2000:])
        sys.stderr.write("propagation A -> B: %.2f s\n" % (t1 - t0))
        self.assertTrue(transaction(b.port, "127.5.0.1").startswith("451"))
        self.assertTrue(transaction(b.port, "127.5.0.2").startswith("250"))
        self.assertEqual(a.stop(), 0, a.stderr())
        self.assertEqual(b.stop(), 0, b.stderr())


if __name__ == "__main__":
    unittest.main()
