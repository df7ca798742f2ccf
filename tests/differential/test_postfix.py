"""The differential suite for the postfix persona: the corpus replayed
against a private stock Debian Postfix and against spamsink; every reply
must be equal or allowlisted (allowlist.py, each entry with its reason)."""
import io
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


class PostfixDifferential(unittest.TestCase):
    def test_corpus_matches_real_postfix(self):
        out = io.StringIO()
        totals, failed = run.run("postfix", show=True, out=out)
        print(out.getvalue().splitlines()[-1])
        self.assertGreaterEqual(totals["dialogues"], 300)
        self.assertGreaterEqual(totals["timed"], 30)  # error sleeps timed
        self.assertEqual(failed, [], out.getvalue())


if __name__ == "__main__":
    unittest.main()
