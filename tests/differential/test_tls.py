"""The TLS probe table (tls_probe.py): stock Postfix and spamsink's postfix
persona, and Debian's Exim (GnuTLS) and the exim persona, negotiate the
same version, cipher and key type and issue tickets alike for every
probe."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tls_probe  # noqa: E402


class TlsParity(unittest.TestCase):
    def test_probe_table(self):
        rows = tls_probe.table()
        print(tls_probe.render(rows))
        self.assertGreaterEqual(len(rows), 20)
        self.assertEqual([r for r in rows if r[1] != r[2]], [],
                         tls_probe.render(rows))
        # Old stacks get in (they are recorded like any client).
        self.assertEqual(dict((n, b) for n, _, b in rows)["tls1.0"][0],
                         "TLSv1")

    def test_exim_probe_table(self):
        rows = tls_probe.table("exim")
        print(tls_probe.render(rows, "exim"))
        self.assertEqual([r for r in rows if r[1] != r[2]], [],
                         tls_probe.render(rows, "exim"))


if __name__ == "__main__":
    unittest.main()
