"""End to end: the spamsink binary, real SMTP sessions from 200 loopback
source addresses, and the HTTP API / export subcommand reporting them.

Loopback only (127.0.0.0/8 source addresses bound per socket); every wait is
bounded; the processes started here are stopped by their pid.
"""
import concurrent.futures
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "tests", "lib"))
from spamsink_proc import EXECUTOR_ARGS, SPAMSINK, Smtp, Spamsink  # noqa: E402

NUM_SOURCES = 200


class Sink(Spamsink):
    """One spamsink process with the API on an ephemeral loopback port."""

    starts = 0

    def __init__(self, db):
        self.db = db
        Sink.starts += 1
        super().__init__(
            ["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0",
             "--db", db, "--ledger-flush-interval", "0.05",
             "--log-sessions", "false"] + EXECUTOR_ARGS,
            "%s.%d.log" % (db, Sink.starts))
        self.smtp_port, self.api_port = self.ports["smtp"], self.ports["api"]

    def get(self, path):
        return self.get_json(path)


def plan(i):
    """What source i sends: (connections, messages each, rcpts, body)."""
    body = ("Subject: offer %d\r\n\r\n" % i) + ("x" * (50 + i)) + "\r\n"
    return 1 + i % 3, i % 4, 1 + i % 2, body


def source_ip(i):
    return "127.1.%d.%d" % (i // 250, 1 + i % 250)


def expect(i, rounds=1):
    conns, msgs, rcpts, body = plan(i)
    return {"connections": conns * rounds,
            "messages": conns * msgs * rounds,
            "recipients": conns * msgs * rcpts * rounds,
            "bytes": conns * msgs * len(body) * rounds}


def smtp_session(port, ip, msgs, rcpts, body):
    c = Smtp(port, source=ip)
    assert c.reply() == 220
    c.cmd("EHLO client%s.example" % ip.replace(".", "-"), 250)
    for m in range(msgs):
        c.cmd("MAIL FROM:<spam@sender.example>", 250)
        for r in range(rcpts):
            c.cmd("RCPT TO:<user%d@victim.example>" % r, 250)
        c.cmd("DATA", 354)
        c.send(body + ".\r\n")
        assert c.reply() == 250
    c.cmd("QUIT", 221)
    c.close()


def send_all(port, sources):
    def one(i):
        conns, msgs, rcpts, body = plan(i)
        for _ in range(conns):
            smtp_session(port, source_ip(i), msgs, rcpts, body)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, sources))


def by_ip(sink):
    page = sink.get("/api/v1/sources?cidr=127.1.0.0/16&limit=1000&sort=ip")
    return {s["ip"]: s for s in page["sources"]}


def wait_committed(sink, connections):
    """Polls /api/v1/stats (bounded) until that many connections are in."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        st = sink.get("/api/v1/stats")
        if st["totals"]["connections"] >= connections:
            return st
        time.sleep(0.05)
    raise AssertionError("ledger did not commit %d connections: %s" %
                         (connections, st))


@unittest.skipUnless(os.access(SPAMSINK, os.X_OK),
                     "spamsink binary not built (SPAMSINK_BUILD_DIR)")
class LedgerEndToEnd(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="spamsink-ledger-e2e-")
        self.db = os.path.join(self.dir.name, "ledger.db")
        self.sinks = []

    def tearDown(self):
        for s in self.sinks:
            s.stop(signal.SIGKILL)
        self.dir.cleanup()

    def start(self):
        s = Sink(self.db)
        self.sinks.append(s)
        return s

    def check_counts(self, sink, rounds=1):
        got = by_ip(sink)
        self.assertEqual(len(got), NUM_SOURCES)
        for i in range(NUM_SOURCES):
            rec = got[source_ip(i)]
            want = expect(i, rounds)
            for k, v in want.items():
                self.assertEqual(rec[k], v, "%s %s" % (source_ip(i), k))

    def test_200_sources_restart_and_export(self):
        sink = self.start()
        send_all(sink.smtp_port, range(NUM_SOURCES))
        total = sum(expect(i)["connections"] for i in range(NUM_SOURCES))
        wait_committed(sink, total)
        self.check_counts(sink)
        one = sink.get("/api/v1/sources/" + source_ip(7))
        self.assertEqual(one["helo_names"][0]["name"], "client127-1-0-8.example")
        self.assertEqual(one["rcpt_domains"][0]["name"], "victim.example")

        # Restart: SIGTERM flushes; the same counts come back.
        self.assertEqual(sink.stop(signal.SIGTERM), 0, sink.stderr())
        sink = self.start()
        self.check_counts(sink)
        self.assertEqual(sink.stop(signal.SIGTERM), 0, sink.stderr())

        # Offline export reads the same database.
        out = subprocess.run([SPAMSINK, "export", "--format", "plain", "--db",
                              self.db, "--cidr", "127.1.0.0/16",
                              "--min-messages", "0"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(sorted(out.stdout.split()),
                         sorted(source_ip(i) for i in range(NUM_SOURCES)))

    def test_kill_9_loses_at_most_the_last_batch(self):
        sink = self.start()
        first = range(0, NUM_SOURCES, 2)
        send_all(sink.smtp_port, first)
        committed = sum(expect(i)["connections"] for i in first)
        wait_committed(sink, committed)
        send_all(sink.smtp_port, range(1, NUM_SOURCES, 2))
        sink.stop(signal.SIGKILL)

        db = sqlite3.connect(self.db)
        self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0],
                         "ok")
        db.close()
        sink = self.start()
        got = by_ip(sink)
        for i in first:
            rec = got[source_ip(i)]
            for k, v in expect(i).items():
                self.assertEqual(rec[k], v, "%s %s" % (source_ip(i), k))
        total = sink.get("/api/v1/stats")["totals"]["connections"]
        everything = sum(expect(i)["connections"] for i in range(NUM_SOURCES))
        self.assertGreaterEqual(total, committed)
        self.assertLessEqual(total, everything)
        self.assertEqual(sink.stop(signal.SIGTERM), 0, sink.stderr())


if __name__ == "__main__":
    unittest.main()
