"""The console in a real browser: headless Chromium (Debian's chromium,
driven over the DevTools protocol) against a spamsink that has just taken
mail from 50 loopback addresses, one of them hostile. Checks what a person
would see, that no script runs from ledger text, that nothing is fetched
outside the sink's origin, and the login. Screenshots go to
$SPAMSINK_BUILD_DIR/browser-screenshots/.

Loopback only; every wait is bounded; the processes started here (spamsink,
chromium) are stopped by their pid.
"""
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import time
import unittest

import cdp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from spamsink_proc import BUILD, SPAMSINK, Smtp, Spamsink  # noqa: E402

SHOTS = os.path.join(BUILD, "browser-screenshots")
NUM_SOURCES = 50
HOSTILE_HELO = "<script>alert(1)</script>"
HOSTILE_DOMAIN = "q\"uo'te<b>.example"
TOKEN = "console-test-token"
# A label of `spamsink traps --generate` (operator's text, shown escaped);
# the first source mails one of its addresses.
TRAP_LABEL = '<b>forum "sig"</b>'
TRAP_CONFIG = """
[traps]
domains = ["trap.example"]
keys = ["1:console-browser-test-key"]
"""


class Sink(Spamsink):
    def __init__(self, workdir, name, extra=()):
        super().__init__(
            ["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0",
             "--db", os.path.join(workdir, name + ".db"),
             "--ledger-flush-interval", "0.05", "--log-sessions", "false",
             "--tarpit-enabled", "false"] + list(extra),
            os.path.join(workdir, name + ".log"))
        self.smtp_port, self.api_port = self.ports["smtp"], self.ports["api"]
        self.origin = "http://127.0.0.1:%d" % self.api_port


def source_ip(i):
    return "127.3.0.%d" % (i + 1)


def helo(i):
    return HOSTILE_HELO if i == NUM_SOURCES - 1 else "helo%d.example" % i


def smtp_session(port, ip, helo_name, messages, mail_domain,
                 rcpt="user@victim.example"):
    c = Smtp(port, source=ip)
    assert c.reply() == 220
    c.cmd("EHLO " + helo_name)
    for _ in range(messages):
        if c.cmd("MAIL FROM:<spam@%s>" % mail_domain) != 250:
            c.cmd("RSET")
            continue
        c.cmd("RCPT TO:<%s>" % rcpt)
        if c.cmd("DATA") == 354:
            c.send(b"Subject: offer\r\n\r\nbuy now\r\n.\r\n")
            c.reply()
    c.cmd("QUIT")
    c.close()


def send_traffic(port, trap_address):
    def one(i):
        domain = HOSTILE_DOMAIN if i == NUM_SOURCES - 1 else "sender.example"
        if i == 0:
            smtp_session(port, source_ip(i), helo(i), 1, domain, trap_address)
        else:
            smtp_session(port, source_ip(i), helo(i), 1 + i % 3, domain)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(NUM_SOURCES)))


def wait_committed(sink, connections, headers=None):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        st = sink.get_json("/api/v1/stats", headers)
        if st["totals"]["connections"] >= connections:
            return st
        time.sleep(0.05)
    raise AssertionError("not committed: %s" % st)


@unittest.skipUnless(os.access(SPAMSINK, os.X_OK), "spamsink not built")
@unittest.skipUnless(os.access(cdp.CHROMIUM, os.X_OK),
                     "chromium missing: run scripts/setup.sh")
class ConsoleInBrowser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(SHOTS, exist_ok=True)
        cls.dir = tempfile.TemporaryDirectory(prefix="spamsink-console-")
        conf = os.path.join(cls.dir.name, "traps.toml")
        with open(conf, "w") as f:
            f.write(TRAP_CONFIG + '[ledger]\ndb_path = "%s"\n'
                    % os.path.join(cls.dir.name, "open.db"))
        gen = subprocess.run(
            [SPAMSINK, "--config", conf, "traps", "--generate", "1",
             "--domain", "trap.example", "--label", TRAP_LABEL],
            capture_output=True, text=True, timeout=30)
        assert gen.returncode == 0, gen.stderr
        trap_address = gen.stdout.split()[0]
        cls.sink = Sink(cls.dir.name, "open", ["--config", conf])
        cls.locked = Sink(cls.dir.name, "locked", ["--api-token", TOKEN])
        send_traffic(cls.sink.smtp_port, trap_address)
        cls.stats = wait_committed(cls.sink, NUM_SOURCES)
        deadline = time.monotonic() + 20
        while not cls.sink.get_json("/api/v1/harvesters")["harvesters"][0][
                "senders"]:
            assert time.monotonic() < deadline, "trap link not committed"
            time.sleep(0.05)
        cls.browser = cdp.Browser()
        b = cls.browser
        for domain in ("Page", "Runtime", "Network", "Log"):
            b.call(domain + ".enable")

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.sink.stop()
        cls.locked.stop()
        cls.dir.cleanup()

    def setUp(self):
        self.mark = len(self.browser.events)

    def shot(self, name):
        self.browser.screenshot(os.path.join(SHOTS, name + ".png"))

    def problems(self):
        """Console errors, exceptions, CSP violations, dialogs, and requests
        outside the sinks' origins, seen so far."""
        origins = (self.sink.origin + "/", self.locked.origin + "/")
        out = []
        for e in self.browser.events[self.mark:]:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append("exception: %s" % p["exceptionDetails"])
            elif m == "Runtime.consoleAPICalled" and p["type"] in (
                    "error", "assert"):
                out.append("console.%s: %s" % (p["type"], p["args"]))
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                text = p["entry"].get("text", "")
                url = p["entry"].get("url", "")
                # The login page answers 401 by design.
                if "401" in text and url.startswith(origins):
                    continue
                out.append("log: %s %s" % (text, url))
            elif m == "Page.javascriptDialogOpening":
                out.append("dialog: %s" % p.get("message"))
            elif m == "Network.requestWillBeSent":
                url = p["request"]["url"]
                if not url.startswith(origins) and url != "about:blank":
                    out.append("request outside the origin: " + url)
        return out

    def test_1_overview_totals_and_chart(self):
        b = self.browser
        b.navigate(self.sink.origin + "/")
        totals = self.sink.get_json("/api/v1/stats")["totals"]
        self.assertEqual(
            b.eval("document.querySelector('#totals [data-key=sources]')"
                   ".textContent"), "{:,}".format(totals["sources"]))
        self.assertEqual(totals["sources"], NUM_SOURCES)
        self.assertEqual(
            b.eval("document.querySelector('#totals [data-key=messages]')"
                   ".textContent"), "{:,}".format(totals["messages"]))
        # The chart drew the last hour: 60 points holding every connection.
        b.wait_for("document.getElementById('chart-minute')"
                   ".getAttribute('data-points') === '60'")
        self.assertEqual(
            int(b.eval("document.getElementById('chart-minute')"
                       ".getAttribute('data-sum')")), totals["connections"])
        self.assertTrue(b.eval("!!document.querySelector('#chart-minute "
                               "canvas')"))
        # The day by hour: 24 points, every session in one of them.
        b.wait_for("document.getElementById('chart-hour')"
                   ".getAttribute('data-points') === '24'")
        self.assertEqual(
            int(b.eval("document.getElementById('chart-hour')"
                       ".getAttribute('data-sum')")), totals["connections"])
        self.shot("overview")
        self.assertEqual(self.problems(), [])

    def test_2_sources_paging_sorting_filter(self):
        b = self.browser
        b.navigate(self.sink.origin + "/sources")
        rows = "Array.from(document.querySelectorAll('#sources tbody tr " \
               "td:first-child')).map(td => td.textContent)"
        seen = b.eval(rows)
        self.shot("sources")
        for _ in range(10):
            if not b.eval("!!document.querySelector('a[rel=next]')"):
                break
            b.submit_and_wait("document.querySelector('a[rel=next]').click()")
            seen += b.eval(rows)
        self.assertEqual(sorted(seen),
                         sorted(source_ip(i) for i in range(NUM_SOURCES)))
        # Sorting by address (a header click) changes the first row.
        b.navigate(self.sink.origin + "/sources")
        first = b.eval(rows)[0]
        b.submit_and_wait(
            "Array.from(document.querySelectorAll('#sources th a'))"
            ".find(a => a.textContent === 'Address').click()")
        self.assertEqual(b.eval(rows)[0], source_ip(0))
        self.assertNotEqual(first, source_ip(0))
        # A CIDR filter typed into the form.
        b.submit_and_wait(
            "document.querySelector('input[name=cidr]').value = "
            "'127.3.0.0/29'; document.getElementById('filters').submit()")
        self.assertEqual(sorted(b.eval(rows)),
                         sorted(source_ip(i) for i in range(7)))
        self.shot("sources-filtered")
        self.assertEqual(self.problems(), [])

    def test_3_source_page_and_hostile_text(self):
        b = self.browser
        b.navigate(self.sink.origin + "/sources")
        b.submit_and_wait("document.querySelector('#sources tbody a')"
                          ".click()")
        ip = b.eval("document.getElementById('source-ip').textContent")
        i = int(ip.split(".")[-1]) - 1
        self.assertIn(helo(i), b.eval(
            "document.getElementById('helo-names').textContent"))
        # Its sessions per hour: the chart has points and holds every
        # session of the address (as the API's per_hour does).
        rec = self.sink.get_json("/api/v1/sources/" + ip)
        self.assertEqual(sum(h["sessions"] for h in rec["per_hour"]),
                         rec["connections"])
        b.wait_for("Number((document.getElementById('chart-source-hours')"
                   " || {getAttribute: () => 0}).getAttribute('data-points'))"
                   " >= 1")
        self.assertEqual(
            int(b.eval("document.getElementById('chart-source-hours')"
                       ".getAttribute('data-sum')")), rec["connections"])
        self.assertTrue(b.eval("!!document.querySelector("
                               "'#chart-source-hours canvas')"))
        self.shot("source")
        hostile = source_ip(NUM_SOURCES - 1)
        # The ledger keeps the names as peer/ cleaned them ("(", ")", "/"
        # and quotes become "?"); "<" and ">" stay. The page shows exactly
        # what the API holds.
        rec = self.sink.get_json("/api/v1/sources/" + hostile)
        helo_name = rec["helo_names"][0]["name"]
        self.assertIn("<script>", helo_name)
        b.navigate(self.sink.origin + "/source/" + hostile)
        names = b.eval("document.getElementById('helo-names').textContent")
        self.assertIn(helo_name, names)
        domains = b.eval(
            "document.getElementById('mail-from-domains').textContent")
        for d in rec["mail_from_domains"]:
            self.assertIn(d["name"], domains)
        # Shown as text: no element came of it, no dialog, no CSP report.
        self.assertEqual(b.eval(
            "document.querySelectorAll('main script, main b').length"), 0)
        self.shot("source-hostile")
        b.navigate(self.sink.origin + "/exports")
        self.shot("exports")
        self.assertEqual(self.problems(), [])

    def test_3b_harvesters_and_timeline(self):
        b = self.browser
        b.navigate(self.sink.origin + "/harvesters")
        cells = b.eval("Array.from(document.querySelectorAll("
                       "'#harvesters tbody td')).map(td => td.textContent)")
        self.assertIn(TRAP_LABEL, cells)
        self.assertEqual(b.eval(
            "document.querySelectorAll('main b').length"), 0)
        self.shot("harvesters")
        # The sender's link leads to its page, whose timeline has the
        # harvest before its mail.
        b.submit_and_wait("document.querySelector('#harvesters ul a')"
                          ".click()")
        self.assertEqual(
            b.eval("document.getElementById('source-ip').textContent"),
            source_ip(0))
        timeline = b.eval("Array.from(document.querySelectorAll("
                          "'#timeline tbody tr')).map(tr => tr.textContent)")
        harvest = [i for i, t in enumerate(timeline) if "harvested by" in t]
        self.assertTrue(harvest, timeline)
        self.assertIn(TRAP_LABEL, timeline[harvest[0]])
        self.assertEqual(b.eval(
            "document.querySelectorAll('main b').length"), 0)
        self.shot("source-timeline")
        b.navigate(self.sink.origin + "/server")
        self.shot("server")
        self.assertEqual(self.problems(), [])

    def test_4_login_cookie(self):
        b = self.browser
        b.navigate(self.locked.origin + "/")
        self.assertTrue(b.eval("!!document.getElementById('login')"))
        self.shot("login")
        b.submit_and_wait(
            "document.querySelector('input[name=token]').value = 'wrong';"
            "document.getElementById('login').submit()")
        self.assertIn("Wrong token", b.eval("document.body.textContent"))
        b.submit_and_wait(
            "document.querySelector('input[name=token]').value = '%s';"
            "document.getElementById('login').submit()" % TOKEN)
        self.assertTrue(b.eval("!!document.getElementById('totals')"))
        cookies = {c["name"]: c for c in
                   b.call("Network.getCookies",
                          urls=[self.locked.origin + "/"])["cookies"]}
        session = cookies["spamsink_session"]
        self.assertTrue(session["httpOnly"])
        self.assertEqual(session["sameSite"], "Strict")
        # Scripts cannot read it.
        self.assertNotIn("spamsink_session", b.eval("document.cookie"))
        b.submit_and_wait("document.querySelector('form.logout').submit()")
        self.assertTrue(b.eval("!!document.getElementById('login')"))
        self.assertEqual(self.problems(), [])

    def test_5_auth_without_browser(self):
        for path in ("/", "/sources", "/api/v1/stats", "/overview.json"):
            status, _, _ = self.locked.request(path)
            self.assertEqual(status, 401, path)
            status, _, _ = self.locked.request(
                path, {"Authorization": "Bearer wrong"})
            self.assertEqual(status, 401, path)
            status, _, _ = self.locked.request(
                path, {"Authorization": "Bearer " + TOKEN})
            self.assertEqual(status, 200, path)
        # DNS rebinding: a token-less loopback API answers only loopback
        # names.
        for path in ("/", "/api/v1/stats", "/healthz"):
            status, _, _ = self.sink.request(path, {"Host": "evil.example"})
            self.assertEqual(status, 403, path)
            status, _, _ = self.sink.request(path, {"Host": "localhost"})
            self.assertEqual(status, 200, path)


if __name__ == "__main__":
    unittest.main()
