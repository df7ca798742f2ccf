#!/usr/bin/python3
"""DNSBL figures: spamsink's DNSBL against the real rbldnsd serving the same
listing, on loopback, in the same run (a benchmark program, not a test).

    bench/dnsbl_bench.py [--build build] [--sources 100000] [--seconds 10]
                         [--rate 10000]

1. export_bench generates a ledger of N sources (80% IPv4 10.0.0.0/8, 20%
   IPv6 2001:db8::/32; reused if present); `spamsink export --format
   rbldnsd` writes the same listing as an rbldnsd zone.
2. Memory per listed address: spamsink's RSS with the DNSBL on minus with it
   off (same ledger, so the rest of the process is the same; both read every
   source through the API first, so the ledger's page cache, which the
   DNSBL's seed fills, is full in both), and rbldnsd's
   RSS with the zone minus with an empty zone; each divided by N.
3. Throughput: dnsperf (Debian) for --seconds, 100 queries outstanding, a
   mix of half listed, half unlisted names (IPv4 and IPv6), against each
   server in turn. Both servers answer on one thread, so queries per second
   are per core (dnsperf itself runs on the other core).
4. Latency: dnsperf -v at a fixed --rate; p50/p99/max of its per-query
   latencies.
The machine's load average is printed: other processes share the cores.
"""
import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src", "dnsbl", "e2e"))


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--sources", type=int, default=100000)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--rate", type=int, default=10000)
    p.add_argument("--db", default="")
    return p.parse_args()


def generated(i):
    """The address export_bench generates for source i."""
    if i % 5 != 4:
        v = 0x0a000000 + i
        return "%d.%d.%d.%d" % (v >> 24, (v >> 16) & 255, (v >> 8) & 255,
                                v & 255)
    return "2001:db8::%x:%x:%x:%x" % ((i >> 48) & 0xffff, (i >> 32) & 0xffff,
                                      (i >> 16) & 0xffff, i & 0xffff)


def query_file(path, n):
    from dnsbl_peers import reverse_name
    rng = random.Random(16)
    with open(path, "w") as f:
        for k in range(20000):
            i = rng.randrange(n)
            if k % 2 == 0:
                ip = generated(i)  # listed
            elif k % 4 == 1:
                ip = "172.%d.%d.%d" % (rng.randrange(16, 32), i & 255,
                                       (i >> 8) & 255)
            else:
                ip = "2a00::%x:%x" % (i >> 16, i & 0xffff)
            f.write("%s A\n" % reverse_name(ip))


def dnsperf(port, data, seconds, rate=0, verbose=False):
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", data, "-l",
           str(seconds), "-q", "100", "-c", "1", "-T", "1"]
    if rate:
        cmd += ["-Q", str(rate)]
    if verbose:
        cmd += ["-v"]
    out = subprocess.run(cmd, capture_output=True, text=True,
                         timeout=seconds + 60).stdout
    qps = re.search(r"Queries per second:\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    codes = re.search(r"Response codes:\s+(.*)", out)
    if not verbose:
        print("port %d: %s" % (port, codes.group(1) if codes else out[-500:]))
    lat = sorted(float(x) for x in re.findall(
        r"^> \S+ \S+ \S+ ([\d.]+)$", out, re.M)) if verbose else []
    return (float(qps.group(1)) if qps else 0.0,
            int(lost.group(1)) if lost else -1, lat)


def pct(lat, p):
    return lat[min(len(lat) - 1, int(len(lat) * p))] * 1e3 if lat else 0.0


def settle(pid):
    """RSS in KiB once it stops growing (bounded: 20 s)."""
    from dnsbl_peers import rss_kib
    last = -1
    for _ in range(100):
        now = rss_kib(pid)
        if now == last:
            return now
        last = now
        time.sleep(0.2)
    return last


def warm(api, n):
    """Reads every source through the API (the ledger's reader and its page
    cache, as the DNSBL's seed does); bounded by n / 1000 + 2 pages."""
    import json
    import urllib.request
    after = ""
    for _ in range(n // 1000 + 2):
        url = "http://127.0.0.1:%d/api/v1/sources?sort=last_seen&limit=1000" % api
        if after:
            url += "&after=" + urllib.request.quote(after)
        with urllib.request.urlopen(url, timeout=60) as r:
            page = json.load(r)
        after = page.get("next") or ""
        if not after:
            return


def main():
    a = parse()
    os.environ["SPAMSINK_BUILD_DIR"] = a.build
    from dnsbl_peers import Rbldnsd, Sink
    spamsink = os.path.join(a.build, "spamsink")
    for tool in ("dnsperf", "rbldnsd"):
        if not shutil.which(tool):
            sys.exit("%s missing (Debian package %s)" % (tool, tool))
    tmp = tempfile.mkdtemp(prefix="spamsink-dnsbl-bench-")
    db = a.db or "/tmp/spamsink-dnsbl-bench-%d.db" % a.sources
    subprocess.run([os.path.join(a.build, "export_bench"),
                    "--sources", str(a.sources), "--db", db, "--formats",
                    "plain"], check=True, stdout=subprocess.DEVNULL)
    zone_dir = os.path.join(tmp, "zone")
    os.mkdir(zone_dir)
    with open(os.path.join(zone_dir, "bl.zone"), "w") as out:
        subprocess.run([spamsink, "export", "--db", db, "--format", "rbldnsd"],
                       stdout=out,
                       check=True)
    with open(os.path.join(zone_dir, "empty.zone"), "w") as out:
        out.write("$SOA 3600 localhost. hostmaster.localhost. 0 600 300 "
                  "86400 3600\n$NS 3600 localhost.\n")
    data = os.path.join(tmp, "queries.txt")
    query_file(data, a.sources)
    print("load average before: %s" % open("/proc/loadavg").read().strip())
    print("listed sources: %d (export: %d lines)" % (a.sources, sum(
        1 for _ in open(os.path.join(zone_dir, "bl.zone")))))

    # The generated sources are from 2023: the ledger must not expire them.
    keep = ["--ledger-retention-days", "36500"]
    common = keep + ["--dnsbl-rate-limit", "0", "--dnsbl-window-seconds", "0",
              "--dnsbl-min-messages", "1", "--dnsbl-max-entries",
              str(max(1000, 2 * a.sources))]
    rows = []
    # Memory: the DNSBL off and on over the same ledger.
    off = Sink(tmp, db, keep, dnsbl=False)
    warm(off.api, a.sources)
    rss_off = settle(off.pid)
    off.stop()
    sink = Sink(tmp, db, common)
    warm(sink.api, a.sources)
    rss_on = settle(sink.pid)
    try:
        qps, lost, _ = dnsperf(sink.dns, data, a.seconds)
        _, _, lat = dnsperf(sink.dns, data, min(5, a.seconds), a.rate, True)
        rows.append(("spamsink", (rss_on - rss_off) * 1024.0 / a.sources, qps,
                     lost, lat))
    finally:
        sink.stop()
    empty = Rbldnsd(zone_dir, "empty.zone")
    rss_empty = settle(empty.pid)
    empty.stop()
    rbl = Rbldnsd(zone_dir, "bl.zone")
    rss_full = settle(rbl.pid)
    try:
        qps, lost, _ = dnsperf(rbl.port, data, a.seconds)
        _, _, lat = dnsperf(rbl.port, data, min(5, a.seconds), a.rate, True)
        rows.append(("rbldnsd", (rss_full - rss_empty) * 1024.0 / a.sources,
                     qps, lost, lat))
    finally:
        rbl.stop()
    print("load average after: %s" % open("/proc/loadavg").read().strip())
    print("%-9s %14s %10s %6s %22s" % ("server", "bytes/address", "qps",
                                        "lost", "p50/p99/max ms @%d qps" %
                                        a.rate))
    for name, mem, qps, lost, lat in rows:
        print("%-9s %14.0f %10.0f %6d %8.3f/%.3f/%.3f" %
              (name, mem, qps, lost, pct(lat, 0.5), pct(lat, 0.99),
               pct(lat, 1.0)))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
