"""The DNSBL on an IPv6 listener ([::1]), over UDP and TCP, listing a sender
that reached the sink's SMTP listener over IPv6 a moment before.

Loopback only (::1); every wait is bounded; the sink is stopped by its pid.
"""
import os
import socket
import tempfile
import time
import unittest

import dns.message
import dns.query
import dns.rcode

from dnsbl_peers import ZONE, Sink, reverse_name
from spamsink_proc import send_one


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@unittest.skipUnless(have_ipv6_loopback(), "no ::1 on this machine")
class Ipv6ListenerTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.sink = Sink(cls.tmp.name, os.path.join(cls.tmp.name, "l.db"),
                        dns="[::1]:0", smtp="[::1]:0")

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()
        cls.tmp.cleanup()

    def ask(self, name, tcp=False):
        q = dns.message.make_query(name, "A")
        if tcp:
            return dns.query.tcp(q, "::1", port=self.sink.dns, timeout=5)
        return dns.query.udp(q, "::1", port=self.sink.dns, timeout=5)

    def test_test_point_over_udp_and_tcp(self):
        for tcp in (False, True):
            r = self.ask(reverse_name("127.0.0.2"), tcp)
            self.assertEqual(r.rcode(), dns.rcode.NOERROR)
            self.assertEqual([x.to_text() for x in r.answer[0]], ["127.0.0.2"])
        self.assertIn('dnsbl_listening address=[::1]:', self.sink.output())

    def test_ipv6_sender_listed(self):
        name = reverse_name("::1")
        self.assertTrue(name.endswith("." + ZONE))
        self.assertEqual(self.ask(name).rcode(), dns.rcode.NXDOMAIN)
        send_one(self.sink.smtp, host="::1")
        r = None
        for _ in range(100):  # listed when the session ends
            r = self.ask(name)
            if r.rcode() == dns.rcode.NOERROR:
                break
            time.sleep(0.05)
        self.assertEqual(r.rcode(), dns.rcode.NOERROR)
        self.assertEqual([x.to_text() for x in r.answer[0]], ["127.0.0.2"])


if __name__ == "__main__":
    unittest.main()
