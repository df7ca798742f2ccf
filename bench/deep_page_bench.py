#!/usr/bin/env python3
"""API page latency near the top and deep in a big ledger (issue 13, item 3).

    bench/deep_page_bench.py --db PATH [--depth 9000000] [--runs 20]
                             [--sorts messages,last_seen,ip] [--build build]

PATH is an existing SQLite ledger (bench/gen_ledger.py makes one of 10M
sources in a few minutes). For each sort the cursor of the record just
above --depth is computed with SQL first (what the previous page's "next"
would say: "<value>_<ip>", or the address for sort=ip). Then build/spamsink
serves that ledger on loopback and, over HTTP, each page of 100 is fetched
--runs times:
  offset=0, offset=100000 (the API's largest offset), offset=<depth>
  (refused with 400: deeper pages go by cursor), after=<cursor at 100000>
  and after=<cursor at depth>.
Prints median / p90 / max milliseconds per page and the first and last
address of the deep page (checked against the SQL's next record).
A program that prints figures, not a test. Loopback only; the server it
starts is stopped by its pid.
"""

import argparse
import ipaddress
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORDER = {"messages": "messages DESC, ip", "last_seen": "last_seen DESC, ip",
         "bytes": "bytes DESC, ip", "connections": "connections DESC, ip",
         "ip": "ip"}


def ip_text(blob):
    a = ipaddress.IPv6Address(bytes(blob))
    return str(a.ipv4_mapped) if a.ipv4_mapped else str(a)


def cursor_at(db, sort, depth):
    """The cursor after the first `depth` records, and the next record's
    address (the first of the page that follows)."""
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        rows = c.execute(
            "SELECT %s, ip FROM sources ORDER BY %s LIMIT 2 OFFSET %d" % (
                "ip" if sort == "ip" else sort, ORDER[sort], depth - 1)
        ).fetchall()
    finally:
        c.close()
    value, ip = rows[0]
    if sort == "ip":
        cur = ip_text(ip)
    else:
        cur = "%s_%s" % (repr(value) if isinstance(value, float) else value,
                         ip_text(ip))
    return cur, ip_text(rows[1][1]) if len(rows) > 1 else None


def get(port, path):
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=600) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    return status, 1000 * (time.monotonic() - t0), body


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--depth", type=int, default=9000000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--sorts", default="messages,last_seen,ip")
    ap.add_argument("--build", default=os.environ.get(
        "SPAMSINK_BUILD_DIR", os.path.join(ROOT, "build")))
    a = ap.parse_args()
    sorts = a.sorts.split(",")
    cursors = {}
    for s in sorts:
        t0 = time.monotonic()
        cursors[s] = (cursor_at(a.db, s, 100000), cursor_at(a.db, s, a.depth))
        print("cursor sort=%s at 100000: %s; at %d: %s (SQL, %.1f s)" % (
            s, cursors[s][0][0], a.depth, cursors[s][1][0],
            time.monotonic() - t0))
    tmp = tempfile.mkdtemp(prefix="spamsink-deep-")
    log_path = os.path.join(tmp, "spamsink.log")
    proc = subprocess.Popen(
        [os.path.join(a.build, "spamsink"), "--listen", "127.0.0.1:0",
         "--api-listen", "127.0.0.1:0", "--db", a.db, "--log-sessions",
         "false"], stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))
    port = None
    t0 = time.monotonic()
    while time.monotonic() - t0 < 300 and port is None:
        if proc.poll() is not None:
            break
        m = re.findall(r"event=api_listening address=127\.0\.0\.1:(\d+)",
                       open(log_path, errors="replace").read())
        if m:
            port = int(m[-1])
        else:
            time.sleep(0.1)
    if port is None:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sys.exit("spamsink did not start: " + open(log_path).read()[-2000:])
    print("server up in %.1f s (%s)" % (
        time.monotonic() - t0,
        (re.findall(r"event=reputation_loaded [^\n]*",
                    open(log_path).read()) or ["no reputation line"])[-1]))
    failures = 0
    try:
        print("%-10s %-22s %6s %9s %9s %9s  %s" % (
            "sort", "page of 100", "status", "median ms", "p90 ms", "max ms",
            "first .. last address"))
        for s in sorts:
            (c1, _), (cd, want_first) = cursors[s]
            pages = [("offset=0", "offset=0"),
                     ("offset=100000", "offset=100000"),
                     ("offset=%d" % a.depth, "offset=%d" % a.depth),
                     ("after= at 100000", "after=" + c1),
                     ("after= at %d" % a.depth, "after=" + cd)]
            for name, q in pages:
                ms = []
                for _ in range(a.runs):
                    status, t, body = get(port, "/api/v1/sources?limit=100&"
                                          "sort=%s&%s" % (s, q))
                    ms.append(t)
                ms.sort()
                span = ""
                if status == 200:
                    recs = json.loads(body).get("sources", [])
                    if recs:
                        span = "%s .. %s" % (recs[0]["ip"], recs[-1]["ip"])
                    if q == "after=" + cd and (
                            not recs or recs[0]["ip"] != want_first):
                        span += " (FAIL: want %s first)" % want_first
                        failures += 1
                else:
                    span = " ".join(body.decode(errors="replace").split())[:70]
                print("%-10s %-22s %6d %9.2f %9.2f %9.2f  %s" % (
                    s, name, status, ms[len(ms) // 2],
                    ms[min(len(ms) - 1, int(0.9 * len(ms)))], ms[-1], span))
                sys.stdout.flush()
        with open("/proc/%d/status" % proc.pid) as f:
            rss = [l.split()[1] for l in f if l.startswith(("VmRSS", "VmHWM"))]
        print("server RSS %.1f MiB, peak %.1f MiB" % (
            int(rss[0]) / 1024, int(rss[1]) / 1024))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    subprocess.run(["rm", "-rf", tmp])
    print("deep_page_bench: %s" % ("OK" if failures == 0 else "FAILED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
