"""End to end: a real crawler (Debian's wget) walks the trap site, mail to
three of the addresses it saved comes from three other loopback addresses,
and the API links each sender to the crawler's address, user agent and
harvest time. The same crawl honouring robots.txt takes nothing from the
tree.

Loopback only; every wait is bounded; processes started here are stopped by
their pid.
"""
import json
import os
import re
import smtplib
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "tests", "lib"))
from spamsink_proc import Spamsink  # noqa: E402

CRAWLER_IP = "127.0.0.5"
POLITE_IP = "127.0.0.6"
SENDERS = ["127.0.0.21", "127.0.0.22", "127.0.0.23"]
UA = "TestHarvester/1.0 (e2e)"
ADDRESS = re.compile(rb"[a-z]+\.[a-z]+\.[a-z2-9]{20}@trap\.example")
CONFIG = """
[traps]
enabled = true
listen = "127.0.0.1:0"
domains = ["trap.example"]
keys = ["2:e2e-secret-key-0123456789"]
"""


class TrapsEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        d = cls.dir.name
        conf = os.path.join(d, "spamsink.toml")
        with open(conf, "w") as f:
            f.write(CONFIG)
        cls.sink = Spamsink(
            ["--config", conf, "--listen", "127.0.0.1:0",
             "--api-listen", "127.0.0.1:0", "--db",
             os.path.join(d, "ledger.db"), "--ledger-flush-interval", "0.05",
             "--log-sessions", "false"],
            os.path.join(d, "spamsink.log"), want=("smtp", "api", "traps"))
        cls.ports = cls.sink.ports

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()
        cls.dir.cleanup()

    @classmethod
    def stderr(cls):
        return cls.sink.output()

    def api(self, path):
        url = "http://127.0.0.1:%d%s" % (self.ports["api"], path)
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())

    def crawl(self, ip, out, *extra):
        subprocess.run(
            ["wget", "--recursive", "--level", "3", "--quiet", "--tries", "1",
             "--timeout", "5", "--bind-address", ip, "--user-agent", UA,
             "--directory-prefix", out] + list(extra) +
            ["http://127.0.0.1:%d/" % self.ports["traps"]],
            timeout=60, check=False)
        saved = []
        for root, _, files in os.walk(out):
            for name in files:
                saved.append(os.path.relpath(os.path.join(root, name), out))
        return saved

    def test_a_harvester_is_linked_to_the_senders_it_fed(self):
        out = os.path.join(self.dir.name, "harvest")
        start = time.time()
        saved = self.crawl(CRAWLER_IP, out, "--execute", "robots=off")
        end = time.time()
        self.assertGreater(len([s for s in saved if "/people/" in s]), 50)
        addresses = set()
        for name in saved:
            with open(os.path.join(out, name), "rb") as f:
                addresses.update(ADDRESS.findall(f.read()))
        self.assertGreater(len(addresses), 100)
        chosen = sorted(a.decode() for a in addresses)[:3]
        for ip, rcpt in zip(SENDERS, chosen):
            with smtplib.SMTP("127.0.0.1", self.ports["smtp"], timeout=10,
                              source_address=(ip, 0)) as s:
                s.sendmail("spam@sender.example", [rcpt],
                           "Subject: offer\r\n\r\nbuy\r\n")
        # A forged one from a fourth address is only counted.
        forged = chosen[0][:-len("@trap.example") - 1] + "a@trap.example"
        if forged == chosen[0]:
            forged = forged.replace("a@", "b@")
        with smtplib.SMTP("127.0.0.1", self.ports["smtp"], timeout=10,
                          source_address=("127.0.0.24", 0)) as s:
            s.sendmail("spam@sender.example", [forged],
                       "Subject: offer\r\n\r\nbuy\r\n")

        links, forged_src = {}, None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (len(links) < 3 or
                                               forged_src is None):
            for ip in SENDERS + ["127.0.0.24"]:
                try:
                    src = self.api("/api/v1/sources/" + ip)
                except urllib.error.HTTPError:
                    continue
                if ip == "127.0.0.24":
                    forged_src = src
                elif src.get("harvesters"):
                    links[ip] = src["harvesters"]
            time.sleep(0.05)
        self.assertEqual(sorted(links), SENDERS, self.stderr())
        for ip in SENDERS:
            self.assertEqual(len(links[ip]), 1)
            h = links[ip][0]
            self.assertEqual(h["ip"], CRAWLER_IP)
            self.assertEqual(h["user_agent"], UA)
            self.assertTrue(h["harvest_known"])
            self.assertGreaterEqual(h["harvest_time"], start - 1)
            self.assertLessEqual(h["harvest_time"], end + 1)
            self.assertGreaterEqual(h["delay_seconds"], 0)
        self.assertEqual(forged_src.get("harvesters"), [])

        # The trap ledger commits on its own interval: wait (bounded) for
        # the forged recipient to be counted too.
        deadline = time.monotonic() + 15
        while True:
            body = self.api("/api/v1/harvesters")
            plain = sum(d["plain"] for d in body["trap_domains"])
            if plain >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        harvesters = {h["ip"]: h for h in body["harvesters"]}
        self.assertIn(CRAWLER_IP, harvesters)
        self.assertEqual(sorted(s["ip"] for s in
                                harvesters[CRAWLER_IP]["senders"]), SENDERS)
        self.assertEqual(harvesters[CRAWLER_IP]["user_agents"], [UA])
        domains = {d["domain"]: d for d in body["trap_domains"]}
        self.assertEqual(domains["trap.example"]["linked"], 3)
        self.assertEqual(domains["trap.example"]["plain"], 1)

    def test_a_crawler_honouring_robots_takes_nothing(self):
        out = os.path.join(self.dir.name, "polite")
        saved = self.crawl(POLITE_IP, out)
        self.assertTrue(saved)
        self.assertEqual([s for s in saved if "people" in s], [])
        for name in saved:
            with open(os.path.join(out, name), "rb") as f:
                self.assertEqual(ADDRESS.findall(f.read()), [], name)


if __name__ == "__main__":
    unittest.main()
