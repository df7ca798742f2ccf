#!/usr/bin/python3
"""Stutter benchmark (issue 17): N connections from distinct loopback
addresses, each stuttered its banner at 1 byte a second by the tarpit, per
executor. Prints, for a window of W seconds after a warm-up:

  - bytes a second reaching each client (target >= 0.95; 1.00 is the rate
    asked for), the slowest client's too;
  - sender connection-seconds per server CPU-second (N x W / the server's
    CPU in the window; target >= 250,000) and the server CPU per stutter
    byte.

A program that prints figures, not a test. Usage:
  bench/stutter_bench.py [--conns 10000] [--window 20] [--warmup 3]
                         [--executors io_uring,asio] [--build DIR]
The banner is about 40 bytes, so warm-up + window must stay below ~35 s.
Only /usr/bin/python3's standard library; every wait is bounded; only the
spamsink started here is stopped, by pid.
"""
import argparse
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_seconds(pid):
    """CPU of all the process's threads (schedstat, nanoseconds)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total / 1e9


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def source(i):
    """127.66.0.1 upwards: one address per connection."""
    i += 1
    return f"127.{66 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"


def run(binary, executor, conns, window, warmup, tmp):
    port = free_port()
    cmd = [binary, "--listen", f"127.0.0.1:{port}",
           "--db", os.path.join(tmp, f"stutter-{executor}.db"),
           "--server-executor", executor,
           "--tarpit-enabled", "true", "--tarpit-stutter", "true",
           "--tarpit-stutter-bytes", "1", "--tarpit-stutter-interval", "1",
           "--tarpit-stutter-for", "0",
           "--tarpit-greeting-min", "0", "--tarpit-greeting-max", "0",
           "--tarpit-max-held", str(conns * 2),
           "--tarpit-max-stuttering", str(conns * 2),
           "--tarpit-degrade-at", "1", "--tarpit-shed-at", "1",
           "--server-max-connections", str(conns * 2),
           "--server-max-connections-per-ip", str(conns * 2),
           "--api-enabled", "false", "--log-sessions", "false"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=tmp)
    socks = []
    ep = select.epoll()
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("spamsink did not start: " +
                                       " ".join(cmd))
                time.sleep(0.05)
        time.sleep(0.2)
        for i in range(conns):
            s = socket.socket()
            s.bind((source(i), 0))
            s.settimeout(10)
            s.connect(("127.0.0.1", port))
            s.setblocking(False)
            ep.register(s.fileno(), select.EPOLLIN)
            socks.append(s)
        by_fd = {s.fileno(): i for i, s in enumerate(socks)}
        got = [0] * conns
        start = time.monotonic()
        w0 = start + warmup
        w1 = w0 + window
        cpu0 = cpu1 = None
        base = None
        while True:
            now = time.monotonic()
            if cpu0 is None and now >= w0:
                cpu0, base = cpu_seconds(proc.pid), list(got)
            if now >= w1:
                cpu1 = cpu_seconds(proc.pid)
                break
            for fd, _ in ep.poll(min(0.05, max(0.0, w1 - now))):
                try:
                    data = socks[by_fd[fd]].recv(4096)
                except BlockingIOError:
                    continue
                if not data:  # closed early: no more bytes from this one
                    ep.unregister(fd)
                    continue
                got[by_fd[fd]] += len(data)
        per = [(g - b) / window for g, b in zip(got, base)]
        cpu = cpu1 - cpu0
        total = sum(got) - sum(base)
        return {
            "executor": executor, "conns": conns, "window": window,
            "bytes_per_s": sum(per) / conns, "slowest": min(per),
            "server_cpu_s": cpu,
            "conn_s_per_cpu_s": conns * window / cpu if cpu > 0 else 0,
            "us_per_byte": cpu / total * 1e6 if total else 0,
        }
    finally:
        for s in socks:
            s.close()
        ep.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--window", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--executors", default="io_uring,asio")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    if a.warmup + a.window > 35:
        sys.exit("stutter_bench: warm-up + window must stay below 35 s "
                 "(the banner's length at 1 B/s)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.conns + 1000
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    binary = os.path.join(a.build, "spamsink")
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"stutter_bench: {a.conns} connections, window {a.window:g} s "
          f"after {a.warmup:g} s, {os.cpu_count()} CPUs, load {load}")
    print("| executor | B/s per client | slowest | server CPU-s | "
          "conn-s per CPU-s | us per byte |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="stutter-bench-") as tmp:
        os.chmod(tmp, 0o777)
        for ex in a.executors.split(","):
            r = run(binary, ex, a.conns, a.window, a.warmup, tmp)
            print(f"| {ex} | {r['bytes_per_s']:.3f} | {r['slowest']:.2f} | "
                  f"{r['server_cpu_s']:.3f} | {r['conn_s_per_cpu_s']:,.0f} | "
                  f"{r['us_per_byte']:.1f} |", flush=True)
    print("targets: >= 0.95 B/s per client, >= 250,000 sender "
          "connection-seconds per server CPU-second")


if __name__ == "__main__":
    main()
