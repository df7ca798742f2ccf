"""Figures of the console (a program, not a test; docs/DASHBOARD.md):

  python3 tests/browser/console_bench.py --db LEDGER.db [--seconds 60]

against a spamsink started here on LEDGER.db (make one with
`build/ledger_bench --ips 1000000 --db m1.db`), in headless Chromium:
1. page weight of the Overview (bytes over the wire, every resource),
2. time to first contentful paint of the Overview and the Sources page
   (cold browser cache), and the server's time for each HTML page,
3. the sink's CPU time while one browser keeps the live Overview open.
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402
import console_browser_test as t  # noqa: E402
import spamsink_proc  # noqa: E402  (console_browser_test put lib/ on the path)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--build", default=t.BUILD or "build")
    a = ap.parse_args()
    # The Sink class starts spamsink_proc.SPAMSINK (the module's global).
    spamsink_proc.SPAMSINK = os.path.join(a.build, "spamsink")
    work = tempfile.mkdtemp(prefix="spamsink-console-bench-")
    db = os.path.abspath(a.db)
    name = os.path.splitext(os.path.basename(db))[0]
    os.symlink(db, os.path.join(work, name + ".db"))
    sink = t.Sink(work, name)
    stats = sink.get_json("/api/v1/stats")
    print("console_bench: sources=%d db=%s" % (stats["totals"]["sources"], db))
    for path in ("/", "/sources", "/source/10.0.0.1", "/server"):
        t0 = time.monotonic()
        status, _, body = sink.request(path)
        print("server %-18s status=%d bytes=%d time=%.1f ms" %
              (path, status, len(body), (time.monotonic() - t0) * 1000))
    b = cdp.Browser()
    try:
        for d in ("Page", "Runtime", "Network"):
            b.call(d + ".enable")
        b.call("Network.setCacheDisabled", cacheDisabled=True)
        for path in ("/", "/sources"):
            mark = len(b.events)
            t0 = time.monotonic()
            b.navigate(sink.origin + path)
            load = time.monotonic() - t0
            if path == "/":
                b.wait_for("document.getElementById('chart-minute')"
                           ".hasAttribute('data-points')")
            fcp = b.wait_for(
                "(performance.getEntriesByName('first-contentful-paint')[0]"
                " || {}).startTime")
            sizes = {}
            urls = {}
            for e in b.events[mark:]:
                p = e.get("params", {})
                if e.get("method") == "Network.requestWillBeSent":
                    urls[p["requestId"]] = p["request"]["url"]
                if e.get("method") == "Network.loadingFinished":
                    sizes[p["requestId"]] = p["encodedDataLength"]
            total = sum(sizes.values())
            print("browser %-9s first_contentful_paint=%.0f ms load=%.0f ms "
                  "transferred=%d bytes in %d requests" %
                  (path, fcp, load * 1000, total, len(sizes)))
            for rid, n in sorted(sizes.items(), key=lambda x: -x[1]):
                print("    %8d  %s" % (n, urls.get(rid, "?").replace(
                    sink.origin, "")))
        b.call("Network.setCacheDisabled", cacheDisabled=False)
        b.navigate(sink.origin + "/")
        c0 = cpu_seconds(sink.proc.pid)
        t0 = time.monotonic()
        time.sleep(a.seconds)
        c1 = cpu_seconds(sink.proc.pid)
        polls = b.eval("performance.getEntriesByType('resource').filter("
                       "e => e.name.endsWith('/overview.json')).length")
        print("live overview for %.0f s: sink cpu=%.3f s (%.2f%% of a core), "
              "%d refreshes" % (time.monotonic() - t0, c1 - c0,
                                100 * (c1 - c0) / a.seconds, polls))
    finally:
        b.close()
        sink.stop()


if __name__ == "__main__":
    main()
