#!/usr/bin/env python3
"""Overload (issue 13, item 10): twice the rate the box can serve.

    bench/overload_bench.py [--seconds 30] [--factor 2] [--max-connections 200]
                            [--build build]

Runs build/spamsink on loopback (SQLite ledger in a temporary directory,
tarpit off, server.max_connections = --max-connections) and:
  1. capacity: build/smtpsend closed loop (64 sessions, one message each,
     sources over 127.4.0.0/16) for 10 s: the messages/s this box serves
     (client and server share the machine's cores);
  2. overload: smtpsend open loop (--rate = factor x capacity, up to 20,000
     sessions open) for --seconds, while the server's RSS, descriptors and
     threads are read from /proc every second.
During the overload a probe opens a new session every 50 ms (from
127.5.0.0/16) and times its first line: how fast a session beyond capacity
gets its 421, and a served one its 220.
Sources come from 127.4.0.0/18 (16,384 addresses, all seen during the
capacity run), so the ledger and the reputation stop gaining sources and
RSS growth in the overload would be a queue.
Prints the capacity run's and the overload run's outcomes and latency
percentiles (connect, banner - 220s only -, end of DATA, whole session,
421s included), the probe's figures, and the server's RSS / descriptors /
threads over time with their least-squares slope over the second half.
Exit 1 when the server dies, when no session was refused with 421 (not
overloaded: raise --factor), or when RSS grows faster than
--max-rss-slope MiB/min over the second half.
A program that prints figures, not a test. Loopback only; every process it
starts is stopped by its pid.
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def proc_figures(pid):
    rss = threads = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024.0
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, len(os.listdir("/proc/%d/fd" % pid)), threads


def slope_per_minute(points):
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return 60.0 * sum((t - mt) * (v - mv) for t, v in points) / den if den else 0


def smtpsend(build, port, extra):
    cmd = [os.path.join(build, "smtpsend"), "-m", "1", "--source-range",
           "127.4.0.0/18", "--phase-timeout", "30", "--json", "--no-progress",
           "--ignore-failures", "-p", str(port)] + extra + ["127.0.0.1"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=600)
    try:
        return json.loads(r.stdout)
    except ValueError:
        sys.exit("smtpsend printed no report: %s" % r.stderr[-2000:])


def probe(port, stop, out, interval=0.05):
    """A new session every interval from 127.5.x.y: (first reply code, ms
    from connect() to that line), -1 when none came within 10 s."""
    i = 0
    while not stop.wait(interval):
        i += 1
        src = "127.5.%d.%d" % (i // 250 % 250, 1 + i % 250)
        t0 = time.monotonic()
        code = -1
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10,
                                          source_address=(src, 0)) as c:
                line = c.makefile("rb").readline()
                code = int(line[:3]) if line[:3].isdigit() else -1
        except (OSError, ValueError):
            pass
        out.append((code, 1000 * (time.monotonic() - t0)))


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


def summary(name, rep):
    m, lat = rep["messages"], rep["latency_ms"]
    print("%s: %d messages in %.1f s: accepted %d (%.0f/s), rejected "
          "temporary %d, failed %d (connect %d, timeout %d, protocol %d); "
          "sessions %d; client queue max %d" % (
              name, m["total"], rep["elapsed_s"], m["accepted"],
              rep["rates"]["messages_per_s"], m.get("temporary", 0),
              m.get("connect", 0) + m.get("timeout", 0) + m.get("protocol", 0),
              m.get("connect", 0), m.get("timeout", 0), m.get("protocol", 0),
              rep["sessions"]["total"],
              rep["extras"]["max_queue_depth"]))
    print("  %-12s %9s %9s %9s %9s %9s" % ("latency ms", "count", "p50", "p90",
                                          "p99", "max"))
    for phase in ("connect", "banner", "end_of_data", "session"):
        h = lat.get(phase)
        if h:
            print("  %-12s %9d %9.2f %9.2f %9.2f %9.2f" % (
                phase, h["count"], h["p50"], h["p90"], h["p99"], h["max"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--factor", type=float, default=2.0)
    ap.add_argument("--max-connections", type=int, default=200)
    ap.add_argument("--max-rss-slope", type=float, default=8.0,
                    help="MiB/min allowed over the second half")
    ap.add_argument("--build", default=os.environ.get(
        "SPAMSINK_BUILD_DIR", os.path.join(ROOT, "build")))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="spamsink-overload-")
    log_path = os.path.join(tmp, "spamsink.log")
    cmd = [os.path.join(args.build, "spamsink"),
           "--listen", "127.0.0.1:0", "--db", os.path.join(tmp, "o.db"),
           "--log-sessions", "false", "--tarpit-enabled", "false",
           "--server-max-connections", str(args.max_connections),
           "--hostname", "mx.overload.test"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                            stderr=open(log_path, "w"))
    port = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and port is None:
        if proc.poll() is not None:
            break
        m = re.findall(r"event=listening address=127\.0\.0\.1:(\d+)",
                       open(log_path, errors="replace").read())
        if m:
            port = int(m[-1])
        else:
            time.sleep(0.05)
    if port is None:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sys.exit("spamsink did not start: " + open(log_path).read()[-2000:])
    failures = []
    try:
        cap = smtpsend(args.build, port, ["-s", "64", "-t", "10"])
        summary("capacity (closed loop, 64 sessions, 10 s)", cap)
        rate = args.factor * cap["rates"]["messages_per_s"]
        samples = []
        stop = threading.Event()

        def sample():
            t0 = time.monotonic()
            while not stop.wait(1.0):
                if proc.poll() is not None:
                    return
                samples.append((time.monotonic() - t0,) +
                               proc_figures(proc.pid))

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        probes = []
        pt = threading.Thread(target=probe, daemon=True,
                              args=(port, stop, probes))
        pt.start()
        over = smtpsend(args.build, port, [
            "-s", "20000", "-t", str(args.seconds), "--rate", "%.0f" % rate])
        stop.set()
        th.join()
        pt.join()
        summary("overload (open loop, %.0f/s = %.1f x capacity, %.0f s)" % (
            rate, args.factor, args.seconds), over)
        for code, what in ((421, "421 (refused)"), (220, "220 (served)"),
                           (-1, "nothing in 10 s")):
            ms = [m for c, m in probes if c == code]
            print("  probe sessions answered %-16s %5d; ms to the line: "
                  "p50 %.2f p90 %.2f p99 %.2f max %.2f" % (
                      what, len(ms), pct(ms, 50), pct(ms, 90), pct(ms, 99),
                      max(ms) if ms else float("nan")))
        print("  server over time:\n  %8s %9s %6s %8s" % (
            "seconds", "RSS MiB", "fds", "threads"))
        for t, rss, fds, nth in samples:
            print("  %8.0f %9.1f %6d %8d" % (t, rss, fds, nth))
        half = [s for s in samples if s[0] >= args.seconds / 2]
        if samples:
            print("  second half: RSS slope %.2f MiB/min, fds slope %.1f/min, "
                  "RSS max %.1f MiB, fds max %d" % (
                      slope_per_minute([(s[0], s[1]) for s in half]),
                      slope_per_minute([(s[0], s[2]) for s in half]),
                      max(s[1] for s in samples), max(s[2] for s in samples)))
        if proc.poll() is not None:
            failures.append("the server died")
        if over["messages"].get("temporary", 0) == 0:
            failures.append("no 421: not overloaded (raise --factor)")
        if half and slope_per_minute([(s[0], s[1]) for s in half]) > \
                args.max_rss_slope:
            failures.append("RSS grows faster than %.1f MiB/min in the "
                            "second half" % args.max_rss_slope)
        log = open(log_path, errors="replace").read()
        print("  server log: %d lines, %d with level=error" % (
            log.count("\n"), log.count("level=error")))
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    for f in failures:
        print("overload_bench: FAIL: " + f)
    print("overload_bench: %s" % ("OK" if not failures else "FAILED"))
    if not failures:
        subprocess.run(["rm", "-rf", tmp])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
