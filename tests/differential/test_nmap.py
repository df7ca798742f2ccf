"""Scanners agree: nmap -sV names spamsink's personas (postfix, exim) as
the real products, the same names it gives the real daemons (Debian's
nmap, loopback only)."""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
import harness  # noqa: E402
import realmta  # noqa: E402


def nmap_sv(port):
    """Returns (the service line of nmap -sV for 127.0.0.1:port, output)."""
    out = subprocess.run(["nmap", "-sV", "-Pn", "-n", "-p", str(port),
                          "127.0.0.1"], capture_output=True, text=True,
                         timeout=300).stdout
    m = re.search(rf"^{port}/tcp\s+open\s+(\S+)\s*(.*)$", out, re.M)
    return (m.group(1), m.group(2).strip()) if m else None, out


class NmapAgrees(unittest.TestCase):
    def test_postfix(self):
        real = realmta.Postfix()
        sink = harness.Sink("--persona", "postfix", "--tarpit-enabled",
                            "false", "--hostname", realmta.HOSTNAME)
        try:
            a, out_a = nmap_sv(real.port)
            b, out_b = nmap_sv(sink.port)
        finally:
            real.close()
            sink.close()
        print("real Postfix:", a)
        print("spamsink postfix persona:", b)
        self.assertEqual(a, ("smtp", "Postfix smtpd"), out_a)
        self.assertEqual(b, a, out_b)

    def test_exim(self):
        self.assertTrue(realmta.Exim.available,
                        "exim4 not unpacked: run scripts/setup.sh")
        real = realmta.Exim()
        sink = harness.Sink("--persona", "exim", "--tarpit-enabled",
                            "false", "--hostname", realmta.HOSTNAME)
        try:
            a, out_a = nmap_sv(real.port)
            b, out_b = nmap_sv(sink.port)
        finally:
            real.close()
            sink.close()
        print("real Exim:", a)
        print("spamsink exim persona:", b)
        self.assertEqual(a, ("smtp", "Exim smtpd 4.96"), out_a)
        self.assertEqual(b, a, out_b)


if __name__ == "__main__":
    unittest.main()
