"""Real clients, not only our own, against a running spamsink."""
import json
import os
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import unittest

from harness import Sink, transaction


def need(tool):
    path = shutil.which(tool) or (os.path.exists("/usr/sbin/" + tool) and
                                  "/usr/sbin/" + tool)
    if not path:
        raise unittest.SkipTest(tool + " is not installed "
                                "(scripts/setup.sh installs it)")
    return path


class Clients(unittest.TestCase):
    def setUp(self):
        self.sink = Sink()

    def tearDown(self):
        self.sink.close()

    def records(self):
        self.assertEqual(self.sink.stop(), 0, self.sink.stderr())
        return [json.loads(l) for l in self.sink.export("jsonl").splitlines()
                if l.strip()]

    def test_smtplib_plain_and_starttls(self):
        with smtplib.SMTP("127.0.0.1", self.sink.port, timeout=10) as s:
            code, banner = s.ehlo("python.test.example")
            self.assertEqual(code, 250)
            self.assertTrue(s.has_extn("pipelining"))
            self.assertTrue(s.has_extn("chunking"))
            self.assertEqual(s.esmtp_features["size"], "10240000")
            refused = s.sendmail("a@test.example", ["b@test.example",
                                                    "c@test.example"],
                                 "Subject: hi\r\n\r\nbody\r\n.leading dot\r\n")
            self.assertEqual(refused, {})
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            code, _ = s.starttls(context=ctx)
            self.assertEqual(code, 220)
            s.ehlo("python.test.example")
            self.assertFalse(s.has_extn("starttls"))
            s.sendmail("a@test.example", ["d@test.example"], "Subject: tls\r\n\r\nx\r\n")
            code, msg = s.noop()
            self.assertEqual(code, 250)
        recs = self.records()
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["messages"], 2)
        self.assertEqual(recs[0]["recipients"], 3)

    def test_smtplib_refusals(self):
        with smtplib.SMTP("127.0.0.1", self.sink.port, timeout=10) as s:
            s.ehlo("x")
            code, _ = s.mail("a@test.example", ["SIZE=99999999999"])
            self.assertEqual(code, 552)
            code, _ = s.rcpt("b@test.example")
            self.assertEqual(code, 503)
            code, _ = s.docmd("XYZZY")
            self.assertEqual(code, 500)
            code, _ = s.docmd("AUTH", "PLAIN AGFiYwBkZWY=")
            self.assertEqual(code, 503)

    def test_swaks_with_tls(self):
        swaks = need("swaks")
        out = subprocess.run([swaks, "--server", "127.0.0.1", "--port",
                              str(self.sink.port), "--from", "s@test.example",
                              "--to", "r@test.example", "-tls"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("250 2.0.0 Ok: queued as", out.stdout)
        self.assertIn("TLS started", out.stdout)

    def test_curl_smtp_upload(self):
        curl = need("curl")
        with tempfile.NamedTemporaryFile("w", suffix=".eml") as f:
            f.write("From: s@test.example\r\nTo: r@test.example\r\n"
                    "Subject: curl\r\n\r\nfrom curl\r\n")
            f.flush()
            out = subprocess.run(
                [curl, "-sS", "--max-time", "20",
                 "smtp://127.0.0.1:%d/client.test.example" % self.sink.port,
                 "--mail-from", "s@test.example", "--mail-rcpt",
                 "r@test.example", "--upload-file", f.name],
                capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.records()[0]["messages"], 1)

    def test_smtp_source(self):
        src = need("smtp-source")
        out = subprocess.run([src, "-s", "5", "-m", "50", "-l", "2000",
                              "-c", "127.0.0.1:%d" % self.sink.port],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        recs = self.records()
        self.assertEqual(sum(r["messages"] for r in recs), 50)

    def test_msmtp(self):
        msmtp = need("msmtp")
        out = subprocess.run([msmtp, "--host=127.0.0.1",
                              "--port=%d" % self.sink.port,
                              "--from=s@test.example", "--tls=off",
                              "r@test.example"],
                             input="Subject: msmtp\n\nhello\n",
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.records()[0]["messages"], 1)


class Personas(unittest.TestCase):
    def test_each_persona_serves_a_transaction(self):
        for persona in ("postfix", "exim", "sendmail", "exchange"):
            sink = Sink("--persona", persona)
            try:
                final = transaction(sink.port)
                self.assertTrue(final.startswith("250 "), persona + final)
            finally:
                sink.close()


if __name__ == "__main__":
    unittest.main()
