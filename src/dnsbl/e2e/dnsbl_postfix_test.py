"""A real consumer of the DNSBL: Debian's Postfix with
`smtpd_client_restrictions = reject_rbl_client bl.test`, in a network
namespace this test creates, whose resolver (/etc/netns/NAME/resolv.conf,
bind-mounted by `ip netns exec`) is spamsink's DNSBL on 127.0.0.1:53.

A sender that just sent mail to the sink (127.0.0.9) is then rejected by
Postfix with its standard DNSBL reply (554 5.7.1 ... blocked using bl.test;
and the sink's TXT); the RFC 5782 test point 127.0.0.2 is rejected; an
unlisted sender (127.0.0.10) is accepted.

Run as root (network namespaces); exits 77 (skipped) where a namespace
cannot be made. The outer process makes the namespace and the resolv.conf,
runs itself inside with --inner, and removes both; the inner one starts
spamsink and Postfix and stops them by pid. Every wait is bounded.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tests",
                                "differential"))

SKIP = 77


def smtp(port, source, rcpt="b@example.org"):
    """EHLO, MAIL, RCPT from `source` to Postfix; returns the RCPT reply."""
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=30,
                                 source_address=(source, 0))
    f = s.makefile("rwb")

    def reply():
        line = b""
        for _ in range(50):
            line = f.readline()
            if not line or line[3:4] != b"-":
                break
        return line.decode(errors="replace").rstrip()

    reply()
    out = None
    for cmd in ["EHLO client.test", "MAIL FROM:<a@client.test>",
                "RCPT TO:<%s>" % rcpt]:
        f.write(cmd.encode() + b"\r\n")
        f.flush()
        out = reply()
    f.write(b"QUIT\r\n")
    f.flush()
    reply()
    s.close()
    return out


class PostfixConsumerTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        from dnsbl_peers import Sink
        from realmta import Postfix
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True,
                       timeout=10)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.sink = Sink(cls.tmp.name, os.path.join(cls.tmp.name, "l.db"),
                        dns="127.0.0.1:53")
        try:
            cls.postfix = Postfix(
                "smtpd_client_restrictions = reject_rbl_client bl.test\n")
        except Exception:
            cls.sink.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.postfix.close()
        cls.sink.stop()
        cls.tmp.cleanup()

    def test_resolver_is_the_sink(self):
        with open("/etc/resolv.conf") as f:
            self.assertIn("nameserver 127.0.0.1", f.read())

    def test_listed_sender_rejected_unlisted_accepted(self):
        import dns.message
        import dns.query
        import dns.rcode
        from dnsbl_peers import smtp_session
        q = dns.message.make_query("9.0.0.127.bl.test", "A")
        r = dns.query.udp(q, "127.0.0.1", port=53, timeout=2)
        self.assertEqual(r.rcode(), dns.rcode.NXDOMAIN)
        # (Postfix is not asked before the listing: its smtpd caches DNSBL
        # answers for the life of the process.)
        # 127.0.0.9 sends to the sink; the DNSBL lists it when the session
        # ends (bounded wait: the session ends as the sink reads QUIT).
        smtp_session(self.sink.smtp, "127.0.0.9", proxy=False)
        for _ in range(100):
            r = dns.query.udp(q, "127.0.0.1", port=53, timeout=2)
            if r.rcode() == dns.rcode.NOERROR:
                break
            time.sleep(0.05)
        self.assertEqual(r.rcode(), dns.rcode.NOERROR)

        listed = smtp(self.postfix.port, "127.0.0.9")
        self.assertRegex(
            listed, r"^554 5\.7\.1 Service unavailable; Client host "
            r"\[127\.0\.0\.9\] blocked using bl\.test; spamsink: seen sending",
            self.postfix.logs()[-3000:])
        test_point = smtp(self.postfix.port, "127.0.0.2")
        self.assertRegex(test_point, r"^554 5\.7\.1 Service unavailable; "
                         r"Client host \[127\.0\.0\.2\] blocked using bl\.test")
        unlisted = smtp(self.postfix.port, "127.0.0.10")
        self.assertTrue(unlisted.startswith("250 2.1.5"), unlisted)
        print("\nlisted:     " + listed + "\ntest point: " + test_point +
              "\nunlisted:   " + unlisted)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and \
                "blocked using bl.test" not in self.postfix.logs():
            time.sleep(0.05)
        self.assertIn("blocked using bl.test", self.postfix.logs())


def outer():
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces)")
        return SKIP
    for tool in ("ip", "/usr/lib/postfix/sbin/master"):
        if not shutil.which(tool):
            print("SKIP: %s missing" % tool)
            return SKIP
    name = "spamsink-dnsbl-%d" % os.getpid()
    if subprocess.run(["ip", "netns", "add", name],
                      timeout=10).returncode != 0:
        print("SKIP: cannot create a network namespace")
        return SKIP
    etc = os.path.join("/etc/netns", name)
    try:
        os.makedirs(etc)
        with open(os.path.join(etc, "resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
        return subprocess.run(
            ["ip", "netns", "exec", name, sys.executable, __file__,
             "--inner"], timeout=300).returncode
    finally:
        shutil.rmtree(etc, ignore_errors=True)
        try:
            os.rmdir("/etc/netns")  # only if no other namespace uses it
        except OSError:
            pass
        subprocess.run(["ip", "netns", "del", name], timeout=10)


if __name__ == "__main__":
    if sys.argv[1:] == ["--inner"]:
        unittest.main(argv=[sys.argv[0], "-v"])
    sys.exit(outer())
