"""Scanners agree, for Sendmail: nmap -sV names the private real Sendmail
and the sendmail persona alike. A ctest of its own: like
test_sendmail.py it runs in a network and UTS namespace (realmta.Sendmail
needs a qualified host name and no resolver)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import realmta  # noqa: E402
import test_nmap  # noqa: E402

# What nmap 7.93 (Debian 12) names Debian's Sendmail by its banner.
SENDMAIL = ("smtp", "Sendmail 8.17.1.9/8.17.1.9/Debian-2+deb12u2")


class NmapAgreesSendmail(test_nmap.NmapAgrees):
    test_postfix = None  # those two run in differential_test_nmap
    test_exim = None

    def test_sendmail(self):
        self.assertTrue(realmta.Sendmail.available,
                        "sendmail not unpacked: run scripts/setup.sh")
        self.agree(realmta.Sendmail(), "sendmail", SENDMAIL)


if __name__ == "__main__":
    unittest.main()
