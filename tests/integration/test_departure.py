"""A client that leaves during a tarpit delay frees its slot before the
delay ends: the executor notices the peer's FIN or reset while the session
waits on its timer, the held_connections gauge drops and the session is
logged as closed by the client.

The delays are 60 s; every case must see the release within 20 s (a
generous bound for a busy machine; the release itself takes milliseconds),
so a release at the delay's end fails the test. No sleeping to test a
delay: the waits poll the API and the log with a bounded deadline."""
import re
import socket
import struct
import time
import unittest
import urllib.request

from harness import Sink

DELAY = 60   # seconds: every tarpit delay in these tests
BOUND = 20   # seconds: the release must come within this


def wait_until(pred, timeout=BOUND):
    """Polls pred every 20 ms until it is true or timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    return pred()


class Departure(unittest.TestCase):
    def start(self, *args):
        sink = Sink("--tarpit-enabled", "true", "--tarpit-stutter", "false",
                    "--api-enabled", "true", "--api-listen", "127.0.0.1:0",
                    *args)
        self.addCleanup(sink.close)
        m = re.search(r"event=api_listening address=127\.0\.0\.1:(\d+)",
                      sink.stderr())
        self.assertIsNotNone(m, sink.stderr())
        sink.api = int(m.group(1))
        return sink

    def held(self, sink):
        url = "http://127.0.0.1:%d/metrics" % sink.api
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        m = re.search(r"^spamsink_held_connections (\d+)", text, re.M)
        self.assertIsNotNone(m, text)
        return int(m.group(1))

    def session(self, sink, client):
        """The session line of client, once logged: (duration, close)."""
        m = re.search(r"event=session .*client=%s .*duration=([0-9.e+-]+) "
                      r".*close=(\w+)" % re.escape(client), sink.stderr())
        return (float(m.group(1)), m.group(2)) if m else None

    def connect(self, sink, source):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((source, 0))
        s.settimeout(10)
        s.connect(("127.0.0.1", sink.port))
        return s

    def leave_and_check(self, sink, s, source, reset=False):
        self.assertTrue(wait_until(lambda: self.held(sink) == 1),
                        "the connection was never held")
        if reset:  # SO_LINGER 0: close sends a reset, not a FIN
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
        t0 = time.monotonic()
        s.close()
        self.assertTrue(wait_until(lambda: self.held(sink) == 0),
                        "the slot was not freed within %d s" % BOUND)
        logged = wait_until(lambda: self.session(sink, source))
        self.assertIsNotNone(logged, sink.stderr())
        duration, close = logged
        self.assertEqual(close, "client_closed")
        self.assertLess(duration, DELAY / 2)
        self.assertLess(time.monotonic() - t0, BOUND)

    def test_leaving_during_the_greeting_delay(self):
        sink = self.start("--tarpit-greeting-min", str(DELAY),
                          "--tarpit-greeting-max", str(DELAY))
        s = self.connect(sink, "127.0.0.21")
        self.leave_and_check(sink, s, "127.0.0.21")

    def test_early_talker_leaving_during_the_greeting_delay(self):
        # Input queued before the FIN does not hide the departure.
        sink = self.start("--tarpit-greeting-min", str(DELAY),
                          "--tarpit-greeting-max", str(DELAY))
        s = self.connect(sink, "127.0.0.22")
        s.sendall(b"EHLO early.test.example\r\n")
        self.leave_and_check(sink, s, "127.0.0.22")

    def test_reset_during_the_greeting_delay(self):
        sink = self.start("--tarpit-greeting-min", str(DELAY),
                          "--tarpit-greeting-max", str(DELAY))
        s = self.connect(sink, "127.0.0.23")
        self.leave_and_check(sink, s, "127.0.0.23", reset=True)

    def test_leaving_during_a_reply_delay(self):
        sink = self.start("--tarpit-greeting-min", "0",
                          "--tarpit-greeting-max", "0",
                          "--tarpit-helo-min", str(DELAY),
                          "--tarpit-helo-max", str(DELAY))
        s = self.connect(sink, "127.0.0.24")
        banner = b""
        while b"\r\n" not in banner:
            chunk = s.recv(4096)
            self.assertTrue(chunk, "closed before the banner")
            banner += chunk
        self.assertTrue(banner.startswith(b"220 "), banner)
        s.sendall(b"EHLO leaver.test.example\r\n")
        self.leave_and_check(sink, s, "127.0.0.24")


if __name__ == "__main__":
    unittest.main()
