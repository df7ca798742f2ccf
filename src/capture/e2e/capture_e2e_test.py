"""End to end: the spamsink binary with sampled capture on (N = 10), 200
messages over one loopback SMTP connection (Python's smtplib), then the
Maildir and the API: exactly 20 files (the sampler is deterministic per
worker thread and one connection stays on one thread), each parsed by
Python's email package with the sink's headers and its own body
(dot-stuffing undone); /api/v1/captures lists them, one is fetched as
message/rfc822, and the mbox is read by Python's mailbox module.

Loopback only; every wait is bounded; the spamsink started here is stopped
by its pid.
"""
import email
import email.policy
import json
import mailbox
import os
import re
import signal
import smtplib
import subprocess
import tempfile
import time
import unittest
import urllib.request

BUILD = os.environ.get("SPAMSINK_BUILD_DIR", "")
SPAMSINK = os.path.join(BUILD, "spamsink")


class CaptureE2E(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = os.path.join(self.tmp.name, "captures")
        self.log_path = os.path.join(self.tmp.name, "spamsink.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [SPAMSINK, "--listen", "127.0.0.1:0", "--api-listen",
             "127.0.0.1:0", "--db", os.path.join(self.tmp.name, "l.db"),
             "--tarpit-enabled", "false", "--capture-sample-every", "10",
             "--capture-dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=self.log)
        self.smtp = self.api = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (self.smtp and self.api):
            if self.proc.poll() is not None:
                self.fail("spamsink exited: " + self.stderr())
            t = self.stderr()
            m = re.findall(r"event=listening address=127\.0\.0\.1:(\d+)", t)
            a = re.findall(r"event=api_listening address=127\.0\.0\.1:(\d+)",
                           t)
            if m and a:
                self.smtp, self.api = int(m[0]), int(a[0])
            else:
                time.sleep(0.02)
        self.assertTrue(self.api, "spamsink did not start: " + self.stderr())

    def tearDown(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.log.close()
        self.tmp.cleanup()

    def stderr(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def get(self, path):
        url = "http://127.0.0.1:%d%s" % (self.api, path)
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.headers.get("Content-Type"), r.read()

    def test_one_in_ten_kept_served_and_exported(self):
        with smtplib.SMTP("127.0.0.1", self.smtp, timeout=20) as s:
            s.ehlo("bot.example")
            for i in range(200):
                body = ("From: s%d@spam.example\r\nSubject: n%d\r\n\r\n"
                        "line\r\n.starts with a dot\r\n" % (i, i))
                s.sendmail("s%d@spam.example" % i, ["t@sink.example"], body)
        new = os.path.join(self.dir, "new")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(os.listdir(new)) < 20:
            time.sleep(0.05)
        time.sleep(0.2)  # nothing more should come
        files = sorted(os.listdir(new))
        self.assertEqual(len(files), 20)
        for name in files:
            with open(os.path.join(new, name), "rb") as f:
                msg = email.message_from_binary_file(
                    f, policy=email.policy.default)
            self.assertEqual(msg["X-Spamsink-Source"], "127.0.0.1")
            self.assertEqual(msg["X-Spamsink-Helo"], "bot.example")
            self.assertEqual(msg["X-Spamsink-Rcpt-To"], "<t@sink.example>")
            self.assertEqual(msg["X-Spamsink-Tls"], "no")
            n = re.match(r"n(\d+)", msg["Subject"]).group(1)
            self.assertEqual(msg["X-Spamsink-Mail-From"],
                             "<s%s@spam.example>" % n)
            self.assertEqual(msg.get_content(),
                             "line\n.starts with a dot\n")
        ctype, body = self.get("/api/v1/captures?limit=15")
        page = json.loads(body)
        self.assertEqual(len(page["captures"]), 15)
        self.assertEqual(page["total_messages"], 20)
        _, body = self.get("/api/v1/captures?after=" + page["next"])
        self.assertEqual(len(json.loads(body)["captures"]), 5)
        first = page["captures"][0]
        ctype, raw = self.get(first["href"])
        self.assertEqual(ctype, "message/rfc822")
        self.assertEqual(raw, open(os.path.join(new, first["id"]),
                                   "rb").read())
        ctype, raw = self.get("/api/v1/captures.mbox?source=127.0.0.1")
        self.assertEqual(ctype, "application/mbox")
        path = os.path.join(self.tmp.name, "x.mbox")
        with open(path, "wb") as f:
            f.write(raw)
        box = mailbox.mbox(path)
        self.assertEqual(len(box), 20)
        for m in box:
            self.assertEqual(m["X-Spamsink-Source"], "127.0.0.1")
        with urllib.request.urlopen(
                "http://127.0.0.1:%d/metrics" % self.api, timeout=10) as r:
            metrics = r.read().decode()
        self.assertIn("spamsink_capture_written_total 20", metrics)
        self.assertIn("spamsink_capture_dropped_total 0", metrics)


if __name__ == "__main__":
    unittest.main()
