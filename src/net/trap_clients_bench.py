#!/usr/bin/env python3
"""Memory per concurrent client of the trap site (issue 19): a benchmark
program that prints figures, not a test.

Starts build/spamsink with the trap site and traps.page_delay = 600 (every
tree page is trickled, so each client stays held), opens N loopback
connections that each request a tree page and read the headers, and prints
the server's resident memory (VmRSS, /proc/PID/status) before and after,
per held client. Kernel socket buffers are not in VmRSS.

  python3 src/net/trap_clients_bench.py build/spamsink [N]

With --requests M instead: the cost of a request through the whole
listener (accept, parse, generate, write, close, and the harvest record
queued and committed to the SQLite ledger): page_delay = 0, M tree pages
fetched one after another on fresh loopback connections, the server's CPU
time (utime + stime, /proc/PID/stat) per request and requests per CPU
second.

  python3 src/net/trap_clients_bench.py build/spamsink --requests 20000
"""
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time

CONFIG = """
[traps]
enabled = true
listen = "127.0.0.1:0"
domains = ["trap.example"]
keys = ["1:bench-secret-key-0123456789"]
page_delay = 600.0
max_slow_clients = 100000
max_slow_per_client = 1000
max_clients = 100000
"""


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    binary = sys.argv[1]
    requests = 0
    if len(sys.argv) > 3 and sys.argv[2] == "--requests":
        requests = int(sys.argv[3])
    n = int(sys.argv[2]) if len(sys.argv) > 2 and not requests else 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = min(n, hard // 2 - 100)
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "spamsink.toml")
        with open(conf, "w") as f:
            f.write(CONFIG.replace("page_delay = 600.0", "page_delay = 0.0")
                    if requests else CONFIG)
        log = open(os.path.join(d, "log"), "w+")
        proc = subprocess.Popen(
            [binary, "--config", conf, "--listen", "127.0.0.1:0",
             "--api-listen", "127.0.0.1:0",
             "--db", os.path.join(d, "ledger.db"), "--log-sessions", "false"],
            stdout=subprocess.DEVNULL, stderr=log)
        try:
            port = None
            for _ in range(500):
                log.seek(0)
                m = re.findall(r"event=traps_listening address=127\.0\.0\.1:"
                               r"(\d+)", log.read())
                if m:
                    port = int(m[-1])
                    break
                time.sleep(0.02)
            if port is None:
                log.seek(0)
                raise SystemExit("spamsink did not start: " + log.read())
            if requests:
                measure_requests(proc.pid, port, requests)
                return
            # Warm up: a few pages at once, so allocator pools exist.
            warm = []
            for i in range(50):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"GET /people/w%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % i)
                s.recv(65536)
                warm.append(s)
            time.sleep(0.5)
            before = rss_kib(proc.pid)
            held = []
            for i in range(n):
                ip = "127.0.%d.%d" % (1 + i // 250, 1 + i % 250)
                s = socket.socket()
                s.bind((ip, 0))
                s.connect(("127.0.0.1", port))
                s.sendall(b"GET /people/p%d/ HTTP/1.1\r\nHost: x\r\n"
                          b"User-Agent: bench\r\n\r\n" % i)
                held.append(s)
            for s in held:
                s.settimeout(10)
                s.recv(65536)  # headers and the first piece
            time.sleep(0.5)
            after = rss_kib(proc.pid)
            print("held clients: %d" % n)
            print("server VmRSS before: %d KiB, after: %d KiB" % (before, after))
            print("per held client: %.2f KiB" % ((after - before) / n))
            for s in held + warm:
                s.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


def fetch(port, path):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\n\r\n"
              % path)
    got = 0
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += len(b)
    s.close()
    return got


def measure_requests(pid, port, m):
    for i in range(200):  # warm up
        fetch(port, b"/people/w%d/" % i)
    c0, t0, total = cpu_seconds(pid), time.monotonic(), 0
    for i in range(m):
        total += fetch(port, b"/people/p%d/q%d/" % (i % 1000, i))
    time.sleep(1.5)  # the ledger's writer commits the last batch
    cpu, wall = cpu_seconds(pid) - c0, time.monotonic() - t0
    print("requests: %d, bytes per response: %.0f" % (m, total / m))
    print("server CPU per request: %.1f us (%.0f requests per CPU second), "
          "wall %.1f s" % (cpu / m * 1e6, m / cpu, wall))


if __name__ == "__main__":
    main()
