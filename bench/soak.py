#!/usr/bin/env python3
"""Soak: the real spamsink binary under a mixed hostile load for a fixed time.

Runs build/spamsink on loopback (SMTP, API, ledger in a temporary directory,
tarpit on) and, at the same time, for --seconds:
  normal senders from many 127.x.y.z addresses (EHLO, MAIL, RCPT, DATA, QUIT,
  every reply checked), pipelining senders, early talkers (tarpitted bots,
  dropped by the client after a few seconds), slowloris clients (a byte every
  two seconds), resets in the middle of DATA (RST), oversized lines and
  bodies, STARTTLS sessions, PROXY v1 headers from the trusted 127.0.0.2, and
  API queries and streamed exports. The checked senders come from the
  exempt 127.1.0.0/16 (else the tarpit would rightly hold them for minutes).
Every --interval seconds it prints the server's RSS, descriptors and threads.
It fails (exit 1) when the server dies, when a normal, pipelining, TLS or
PROXY session did not get its replies, or when, after the warm-up (the first
third), RSS grows faster than --max-rss-slope MiB/min (least squares) or
descriptors / threads end higher than the middle third's peak plus a margin.

CI: bench/soak.py --seconds 120 (registered as the ctest `soak`, label soak).
Long: bench/soak.py --seconds 3600. Loopback only; the process started here
is stopped by its pid.
"""

import argparse
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def proc_figures(pid):
    rss = threads = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024.0
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir("/proc/%d/fd" % pid))
    return rss, fds, threads


def slope_per_minute(points):
    """Least-squares slope of (t seconds, v) in v per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    if den == 0:
        return 0.0
    return 60.0 * sum((t - mt) * (v - mv) for t, v in points) / den


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.failures = []

    def add(self, kind, ok, why=""):
        with self.lock:
            k = self.counts.setdefault(kind, [0, 0])
            k[0 if ok else 1] += 1
            if not ok and len(self.failures) < 20:
                self.failures.append("%s: %s" % (kind, why))


def source_addr(rng, checked=False):
    # Checked senders come from 127.1.0.0/16 (tarpit.exempt: their replies
    # come at once), hostile ones from 127.2.0.0 .. 127.9.7.254; never
    # 127.0.0.2 (the PROXY peer).
    # A fixed pool of about 20,000 addresses, all seen during the warm-up:
    # after it the ledger and the reputation stop gaining sources, so any
    # further growth is a leak (growth with new sources is bounded by the
    # budgets, tested on their own).
    if checked:
        return "127.1.%d.%d" % (rng.randint(0, 15), rng.randint(1, 254))
    return "127.%d.%d.%d" % (rng.randint(2, 9), rng.randint(0, 7),
                             rng.randint(1, 254))


def connect(port, src, timeout=30):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def reply(self):
        """One SMTP reply (possibly multi-line): its code."""
        while True:
            while b"\r\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed")
                self.buf += data
            line, self.buf = self.buf.split(b"\r\n", 1)
            if len(line) >= 4 and line[3:4] == b"-":
                continue
            return int(line[:3])


def expect(r, codes):
    c = r.reply()
    if c not in codes:
        raise ValueError("reply %d, want %s" % (c, codes))


def normal_session(port, src, proxy=None, tls=False, pipelining=False):
    s = connect(port, src)
    try:
        if proxy:
            s.sendall(proxy.encode())
        r = Reader(s)
        expect(r, (220,))
        if pipelining:
            s.sendall(b"EHLO pipe.example\r\nMAIL FROM:<a@pipe.example>\r\n"
                      b"RCPT TO:<b@example.org>\r\nDATA\r\n")
            for want in ((250,), (250,), (250,), (354,)):
                expect(r, want)
        else:
            s.sendall(b"EHLO normal.example\r\n")
            expect(r, (250,))
            if tls:
                s.sendall(b"STARTTLS\r\n")
                expect(r, (220,))
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                s = ctx.wrap_socket(s)
                r = Reader(s)
                s.sendall(b"EHLO normal.example\r\n")
                expect(r, (250,))
            s.sendall(b"MAIL FROM:<a@normal.example>\r\n")
            expect(r, (250,))
            s.sendall(b"RCPT TO:<b@example.org>\r\n")
            expect(r, (250,))
            s.sendall(b"DATA\r\n")
            expect(r, (354,))
        s.sendall(b"Subject: soak\r\n\r\n" + (b"x" * 70 + b"\r\n") * 30 +
                  b".\r\n")
        expect(r, (250, 451, 554))
        s.sendall(b"QUIT\r\n")
        expect(r, (221,))
    finally:
        s.close()


def hostile_session(port, src, kind, rng):
    s = connect(port, src, timeout=5)
    try:
        if kind == "early":
            s.sendall(b"EHLO bot.example\r\n")  # before the greeting
            s.recv(4096)
        elif kind == "slowloris":
            for ch in b"EHLO slow":
                s.sendall(bytes([ch]))
                time.sleep(2)
        elif kind == "reset":
            r = Reader(s)
            expect(r, (220,))
            s.sendall(b"EHLO r.example\r\nMAIL FROM:<a@r.example>\r\n"
                      b"RCPT TO:<b@example.org>\r\nDATA\r\n")
            time.sleep(0.5)
            s.sendall(b"x" * rng.randint(1000, 100000))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         b"\x01\x00\x00\x00\x00\x00\x00\x00")
        elif kind == "longline":
            s.sendall(b"EHLO " + b"a" * 200000 + b"\r\n")
            s.recv(4096)
        elif kind == "bigbody":
            r = Reader(s)
            expect(r, (220,))
            s.sendall(b"EHLO big.example\r\nMAIL FROM:<a@big.example>\r\n"
                      b"RCPT TO:<b@example.org>\r\nDATA\r\n")
            s.sendall(b"y" * (4 << 20) + b"\r\n.\r\n")
            s.recv(4096)
    except (OSError, ValueError, ConnectionError):
        pass  # hostile clients are cut off or time out: expected
    finally:
        s.close()


def worker(kind, port, stats, stop, seed):
    rng = random.Random(seed)
    while not stop.is_set():
        src = source_addr(rng, kind in ("normal", "pipelining", "tls"))
        try:
            if kind in ("normal", "pipelining", "tls"):
                normal_session(port, src, tls=kind == "tls",
                               pipelining=kind == "pipelining")
            elif kind == "proxy":
                client = source_addr(rng, True)
                normal_session(port, "127.0.0.2",
                               proxy="PROXY TCP4 %s 127.0.0.1 %d 25\r\n" %
                               (client, rng.randint(1024, 65535)))
            else:
                hostile_session(port, src, kind, rng)
                stats.add(kind, True)
                continue
            stats.add(kind, True)
        except (OSError, ValueError, ConnectionError) as e:
            if stop.is_set():
                return
            stats.add(kind, False, "%s from %s" % (e, src))


def api_worker(api_port, stats, stop):
    paths = ["/healthz", "/api/v1/stats", "/api/v1/sources?limit=100",
             "/api/v1/sources?sort=last_seen&limit=50", "/metrics",
             "/api/v1/export?format=jsonl&min_messages=0",
             "/api/v1/export?format=cidr&v4_prefix=24",
             "/api/v1/export?format=csv"]
    i = 0
    while not stop.is_set():
        path = paths[i % len(paths)]
        i += 1
        try:
            with urllib.request.urlopen(
                    "http://127.0.0.1:%d%s" % (api_port, path),
                    timeout=30) as r:
                r.read()
                stats.add("api", r.status == 200, "%s %d" % (path, r.status))
        except OSError as e:
            stats.add("api", False, "%s: %s" % (path, e))
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--interval", type=float, default=5)
    ap.add_argument("--build", default=os.environ.get(
        "SPAMSINK_BUILD_DIR", os.path.join(ROOT, "build")))
    ap.add_argument("--max-rss-slope", type=float, default=4.0,
                    help="MiB per minute after the warm-up")
    ap.add_argument("--fd-margin", type=int, default=32)
    ap.add_argument("--thread-margin", type=int, default=2)
    ap.add_argument("--scale", type=int, default=1,
                    help="workers per kind")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="spamsink-soak-")
    log_path = os.path.join(tmp, "spamsink.log")
    log = open(log_path, "w")
    cmd = [os.path.join(args.build, "spamsink"),
           "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0",
           "--db", os.path.join(tmp, "soak.db"),
           "--ledger-flush-interval", "0.5", "--log-sessions", "false",
           "--tarpit-enabled", "true",
           "--server-proxy-trusted", "127.0.0.2/32",
           "--tarpit-exempt", "127.1.0.0/16",
           "--smtp-idle-timeout", "10", "--smtp-max-message-size", "1048576",
           "--hostname", "mx.soak.test"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    smtp_port = api_port = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not (smtp_port and api_port):
        if proc.poll() is not None:
            break
        text = open(log_path, errors="replace").read()
        m = re.findall(r"event=listening address=127\.0\.0\.1:(\d+)", text)
        a = re.findall(r"event=api_listening address=127\.0\.0\.1:(\d+)", text)
        if m and a:
            smtp_port, api_port = int(m[-1]), int(a[-1])
        else:
            time.sleep(0.05)
    if not (smtp_port and api_port):
        print("spamsink did not start:\n" + open(log_path).read())
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        return 1

    stats = Stats()
    stop = threading.Event()
    kinds = {"normal": 4, "pipelining": 1, "tls": 1, "proxy": 1, "early": 3,
             "slowloris": 4, "reset": 1, "longline": 1, "bigbody": 1}
    threads = []
    seed = 1
    for kind, n in kinds.items():
        for _ in range(n * args.scale):
            t = threading.Thread(target=worker, daemon=True,
                                 args=(kind, smtp_port, stats, stop, seed))
            seed += 1
            threads.append(t)
    threads.append(threading.Thread(target=api_worker, daemon=True,
                                    args=(api_port, stats, stop)))
    for t in threads:
        t.start()

    samples = []  # (t, rss, fds, threads)
    t0 = time.monotonic()
    print("%8s %10s %6s %8s  %s" % ("seconds", "RSS MiB", "fds", "threads",
                                    "sessions ok/failed"))
    died = False
    while time.monotonic() - t0 < args.seconds:
        time.sleep(min(args.interval, args.seconds - (time.monotonic() - t0)))
        if proc.poll() is not None:
            died = True
            break
        t = time.monotonic() - t0
        rss, fds, nthreads = proc_figures(proc.pid)
        samples.append((t, rss, fds, nthreads))
        with stats.lock:
            ok = sum(v[0] for v in stats.counts.values())
            bad = sum(v[1] for v in stats.counts.values())
        print("%8.0f %10.1f %6d %8d  %d/%d" % (t, rss, fds, nthreads, ok, bad))
        sys.stdout.flush()
    stop.set()
    join_deadline = time.monotonic() + 25  # a slowloris session lasts 18 s
    for t in threads:
        t.join(timeout=max(0.0, join_deadline - time.monotonic()))

    failures = []
    if died or proc.poll() is not None:
        failures.append("spamsink died (status %s)" % proc.poll())
    else:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        if rc != 0:
            failures.append("spamsink exited with %d at SIGTERM" % rc)
    log_text = open(log_path, errors="replace").read()
    if "AddressSanitizer" in log_text or "runtime error:" in log_text:
        failures.append("sanitizer report in the log")

    print("\nsessions by kind (ok, failed):")
    for kind, (ok, bad) in sorted(stats.counts.items()):
        print("  %-11s %7d %5d" % (kind, ok, bad))
        if bad and kind in ("normal", "pipelining", "tls", "proxy", "api"):
            failures.append("%d %s sessions did not get their replies" %
                            (bad, kind))
    for f in stats.failures[:10]:
        print("  e.g. " + f)
    for kind in ("normal", "api"):
        if stats.counts.get(kind, [0])[0] == 0:
            failures.append("no %s session succeeded" % kind)

    n = len(samples)
    if n >= 6:
        after = samples[n // 3:]
        middle = samples[n // 3:2 * n // 3]
        last = samples[2 * n // 3:]
        rss_slope = slope_per_minute([(t, r) for t, r, _, _ in after])
        fd_peak_mid = max(s[2] for s in middle)
        th_peak_mid = max(s[3] for s in middle)
        fd_end = max(s[2] for s in last)
        th_end = max(s[3] for s in last)
        print("\nafter the warm-up: RSS slope %.2f MiB/min (limit %.1f); "
              "fds %d -> %d (margin %d); threads %d -> %d (margin %d)" %
              (rss_slope, args.max_rss_slope, fd_peak_mid, fd_end,
               args.fd_margin, th_peak_mid, th_end, args.thread_margin))
        if rss_slope > args.max_rss_slope:
            failures.append("RSS grows %.2f MiB/min" % rss_slope)
        if fd_end > fd_peak_mid + args.fd_margin:
            failures.append("descriptors grow: %d -> %d" %
                            (fd_peak_mid, fd_end))
        if th_end > th_peak_mid + args.thread_margin:
            failures.append("threads grow: %d -> %d" % (th_peak_mid, th_end))
    else:
        failures.append("too few samples (%d): raise --seconds" % n)

    if failures:
        print("\nFAIL: " + "; ".join(failures))
        print("log: " + log_path)
        return 1
    print("\nOK")
    subprocess.run(["rm", "-rf", tmp])
    return 0


if __name__ == "__main__":
    sys.exit(main())
