"""Scanners agree: nmap -sV names spamsink's personas (postfix, exim;
sendmail in test_nmap_sendmail.py) as the real products, the same names it
gives the real daemons (Debian's nmap, loopback only)."""
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
    def agree(self, real, persona, expected):
        """nmap names the real daemon `expected`, and the persona the same."""
        try:
            sink = harness.Sink("--persona", persona, "--tarpit-enabled",
                                "false", "--hostname", realmta.HOSTNAME)
            try:
                a, out_a = nmap_sv(real.port)
                b, out_b = nmap_sv(sink.port)
            finally:
                sink.close()
        finally:
            real.close()
        print("real daemon:", a)
        print(f"spamsink {persona} persona:", b)
        self.assertEqual(a, expected, out_a)
        self.assertEqual(b, a, out_b)

    def test_postfix(self):
        self.agree(realmta.Postfix(), "postfix", ("smtp", "Postfix smtpd"))

    def test_exim(self):
        self.assertTrue(realmta.Exim.available,
                        "exim4 not unpacked: run scripts/setup.sh")
        self.agree(realmta.Exim(), "exim", ("smtp", "Exim smtpd 4.96"))


if __name__ == "__main__":
    unittest.main()
