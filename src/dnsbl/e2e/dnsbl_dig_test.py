"""End to end: the spamsink binary with the DNSBL on, queried by the real
`dig` (bind9-dnsutils) over UDP and TCP on loopback, and listing a sender
whose SMTP session ended a moment ago.

Loopback only; every wait is bounded; the spamsink started here is stopped
by its pid.
"""
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "tests", "lib"))
from spamsink_proc import Spamsink, send_one  # noqa: E402

ZONE = "bl.test"
V6_TEST_POINT = ("2.0.0.0.0.0.f.7.f.f.f.f." + "0." * 20).rstrip(".")


class Sink(Spamsink):
    def __init__(self, tmp, extra=()):
        super().__init__(
            ["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0",
             "--db", os.path.join(tmp, "ledger.db"),
             "--tarpit-enabled", "false", "--dnsbl-enabled", "true",
             "--dnsbl-zone", ZONE, "--dnsbl-listen", "127.0.0.1:0",
             "--dnsbl-rate-limit", "20"] + list(extra),
            os.path.join(tmp, "spamsink.%d.log" % time.time_ns()),
            want=("smtp", "api", "dns"))
        self.smtp, self.api, self.dns = (self.ports["smtp"], self.ports["api"],
                                         self.ports["dns"])

    def dig(self, *args, source="127.0.0.1"):
        out = subprocess.run(
            ["dig", "-p", str(self.dns), "@127.0.0.1", "-b", source,
             "+norec", "+time=2", "+tries=1"] + list(args),
            capture_output=True, text=True, timeout=20)
        return out.stdout

    def metrics(self):
        url = "http://127.0.0.1:%d/metrics" % self.api
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()


# 2.0.0.127.<ZONE> A, no recursion wanted.
QUERY = struct.pack(">HHHHHH", 7, 0, 1, 0, 0, 0) + b"".join(
    bytes([len(l)]) + l.encode()
    for l in ["2", "0", "0", "127"] + ZONE.split(".")) + b"\x00\x00\x01\x00\x01"


def status(dig_output):
    m = re.search(r"status: (\w+)", dig_output)
    return m.group(1) if m else None


def send_mail(port, source):
    send_one(port, source=source)


class DnsblDigTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.sink = Sink(cls.tmp.name, ["--dnsbl-max-tcp-clients", "2"])

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()
        cls.tmp.cleanup()

    def test_rfc5782_test_points(self):
        out = self.sink.dig("2.0.0.127." + ZONE, "A")
        self.assertEqual(status(out), "NOERROR", out)
        self.assertRegex(out, r"IN\s+A\s+127\.0\.0\.2")
        self.assertIn(" aa", out.split("flags:")[1].split(";")[0])
        out = self.sink.dig("2.0.0.127." + ZONE, "TXT")
        self.assertIn("RFC 5782 test point", out)
        self.assertEqual(status(self.sink.dig("1.0.0.127." + ZONE, "A")),
                         "NXDOMAIN")
        out = self.sink.dig(V6_TEST_POINT + "." + ZONE, "A")
        self.assertRegex(out, r"IN\s+A\s+127\.0\.0\.2")
        one = "1" + V6_TEST_POINT[1:]
        self.assertEqual(status(self.sink.dig(one + "." + ZONE, "A")),
                         "NXDOMAIN")

    def test_live_listing_after_a_session(self):
        name = "9.0.0.127." + ZONE
        self.assertEqual(status(self.sink.dig(name, "A")), "NXDOMAIN")
        send_mail(self.sink.smtp, "127.0.0.9")
        out = ""
        for _ in range(50):  # the session ends when the server sees QUIT
            out = self.sink.dig(name, "A")
            if status(out) == "NOERROR":
                break
            time.sleep(0.05)
        self.assertRegex(out, r"\t300\tIN\tA\t127\.0\.0\.2")
        txt = self.sink.dig(name, "TXT", "+short")
        self.assertIn("seen sending: 1 messages in 1 connections", txt)
        self.assertRegex(txt, r"first seen \d{4}-\d\d-\d\dT")

    def test_apex_negative_and_outside(self):
        out = self.sink.dig(ZONE, "SOA")
        self.assertRegex(out, r"bl\.test\.\s+3600\s+IN\s+SOA\s+ns\.bl\.test\. "
                              r"hostmaster\.bl\.test\. 1 3600 600 86400 60")
        self.assertRegex(self.sink.dig(ZONE, "NS"), r"IN\tNS\tns\.bl\.test\.")
        out = self.sink.dig("4.3.2.1." + ZONE, "A")
        self.assertEqual(status(out), "NXDOMAIN")
        self.assertRegex(out, r"AUTHORITY SECTION:\nbl\.test\.\s+60\s+IN\s+SOA")
        self.assertEqual(status(self.sink.dig("2.0.0.127.other.test", "A")),
                         "REFUSED")

    def test_tcp_and_edns(self):
        out = self.sink.dig("+tcp", "2.0.0.127." + ZONE, "A")
        self.assertRegex(out, r"IN\s+A\s+127\.0\.0\.2")
        self.assertIn("(TCP)", out)
        out = self.sink.dig("+edns=0", "2.0.0.127." + ZONE, "A")
        self.assertRegex(out, r"EDNS: version: 0, flags:; udp: 1232")
        out = self.sink.dig("+edns=1", "+noednsnegotiation",
                            "2.0.0.127." + ZONE, "A")
        self.assertEqual(status(out), "BADVERS", out)

    def test_rate_limit_holds_and_others_are_answered(self):
        q = QUERY
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.5.1", 0))
        s.settimeout(0.5)
        for _ in range(500):
            s.sendto(q, ("127.0.0.1", self.sink.dns))
        full = truncated = 0
        try:
            while True:
                data = s.recv(2048)
                if data[2] & 0x02:
                    truncated += 1
                else:
                    full += 1
        except socket.timeout:
            pass
        s.close()
        # A burst of 20 and a second's worth of refill at most.
        self.assertLessEqual(full, 45)
        # slip 2: half the rest (the kernel may drop some of a burst of 500
        # datagrams, so the counts are bounds, not figures).
        self.assertGreater(truncated, 50)
        # Another prefix is still answered.
        out = self.sink.dig("2.0.0.127." + ZONE, "A", source="127.0.6.1")
        self.assertEqual(status(out), "NOERROR")
        m = re.search(r"spamsink_dnsbl_rate_limited_total (\d+)",
                      self.sink.metrics())
        self.assertGreaterEqual(int(m.group(1)), 2 * truncated - 1)

    def test_tcp_client_cap(self):
        held = [socket.create_connection(("127.0.0.1", self.sink.dns),
                                         timeout=5) for _ in range(2)]
        for h in held:  # an answer proves the server holds the connection
            h.sendall(struct.pack(">H", len(QUERY)) + QUERY)
            self.assertGreater(len(h.recv(2048)), 12)
        third = socket.create_connection(("127.0.0.1", self.sink.dns),
                                         timeout=5)
        self.assertEqual(third.recv(10), b"")  # closed at once
        third.close()
        for h in held:
            h.close()
        self.assertRegex(self.sink.metrics(),
                         r"spamsink_dnsbl_tcp_refused_total [1-9]")

    def test_metrics(self):
        self.sink.dig("2.0.0.127." + ZONE, "A")
        text = self.sink.metrics()
        for name in ["queries", "listed", "nxdomain", "refused"]:
            self.assertRegex(text, r"spamsink_dnsbl_%s_total \d+" % name)


if __name__ == "__main__":
    unittest.main()
