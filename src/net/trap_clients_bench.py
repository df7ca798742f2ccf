#!/usr/bin/env python3
"""Memory per concurrent client of the trap site (issue 19): a benchmark
program that prints figures, not a test.

Starts build/spamsink with the trap site and traps.page_delay = 600 (every
tree page is trickled, so each client stays held), opens N loopback
connections that each request a tree page and read the headers, and prints
the server's resident memory (VmRSS, /proc/PID/status) before and after,
per held client. Kernel socket buffers are not in VmRSS.

  python3 src/net/trap_clients_bench.py build/spamsink [N]
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


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = min(n, hard // 2 - 100)
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "spamsink.toml")
        with open(conf, "w") as f:
            f.write(CONFIG)
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


if __name__ == "__main__":
    main()
