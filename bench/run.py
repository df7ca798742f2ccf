#!/usr/bin/env python3
"""spamsink benchmark: spamsink vs Postfix smtp-sink, side by side.

One command runs both servers on loopback, interleaved and repeated, drives
them with smtpsend, reads each server's CPU and memory from /proc, prints a
table per scenario and (unless --no-write) rewrites docs/BENCHMARKS.md and
its plot. It is a program that prints figures, not a test: nothing here
fails on a slow machine. --smoke runs a tiny version (CI checks it works).

Usage: bench/run.py [--smoke] [--repeats N] [--build DIR] [--no-write]
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (bench/report.py: tables, markdown, plot)

SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# name, smtpsend arguments (besides -p/--json), messages (full, smoke)
def scenarios(smoke):
    n_small = 400 if smoke else 20000
    n_big = 100 if smoke else 2000
    s = [
        ("1KiB 1x100", ["-s", "1", "-m", "100", "-b", "1024"], n_small),
        ("1KiB 10x100", ["-s", "10", "-m", "100", "-b", "1024"], n_small),
        ("1KiB 100x100", ["-s", "100", "-m", "100", "-b", "1024"], n_small),
        ("1KiB 1x1", ["-s", "1", "-m", "1", "-b", "1024"], n_small // 4),
        ("1KiB 10x1", ["-s", "10", "-m", "1", "-b", "1024"], n_small // 2),
        ("1KiB 100x1", ["-s", "100", "-m", "1", "-b", "1024"], n_small // 2),
        ("100KiB 10x100", ["-s", "10", "-m", "100", "-b", "102400"], n_big),
        ("100KiB 100x1", ["-s", "100", "-m", "1", "-b", "102400"], n_big),
        ("1KiB 10x100 10rcpt",
         ["-s", "10", "-m", "100", "-b", "1024", "--recipients", "10"],
         n_small // 2),
    ]
    # The same loads written like a bulk sender (smtpsend --bulk: content
    # right after DATA, the next transaction before this one's reply), so
    # that the server, not the client's round trips, sets the pace.
    s += [(name + " bulk", a + ["--bulk"], n) for name, a, n in s
          if name in ("1KiB 100x100", "1KiB 100x1", "100KiB 10x100",
                      "1KiB 10x100 10rcpt")]
    if smoke:
        keep = {"1KiB 10x100", "1KiB 100x1", "100KiB 10x100",
                "1KiB 100x100 bulk"}
        s = [x for x in s if x[0] in keep]
    return s


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def proc_cpu(pid):
    """CPU seconds used by pid so far. utime + stime from /proc/<pid>/stat
    count in clock ticks (10 ms), too coarse for short runs, so when every
    thread's /proc/<pid>/task/*/schedstat (nanoseconds on CPU) is readable
    and agrees with it, that sum is used instead."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    coarse = (int(fields[11]) + int(fields[12])) / CLK_TCK
    try:
        fine = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                fine += int(f.read().split()[0])
        fine /= 1e9
    except (OSError, ValueError, IndexError):
        return coarse
    # Exited threads vanish from task/ but stay in stat: trust stat then.
    return fine if fine >= coarse - 0.05 else coarse


def proc_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def socket_fds(pid):
    """Sockets the process holds open. Unlike /proc/net/tcp this leaves out
    connections still waiting in the listen queue, which the server has not
    accepted (and pays nothing for)."""
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
    except OSError:
        pass
    return n


class Server:
    """One server process, started fresh for each run and stopped by pid."""

    def __init__(self, kind, args, tmp):
        self.kind, self.args, self.tmp = kind, args, tmp
        self.proc = None
        self.port = 0

    def start(self):
        self.port = free_port()
        if self.kind == "floor":
            cmd = [os.path.join(self.args.build, "floor_sink"), str(self.port)]
        elif self.kind == "smtp-sink":
            cmd = [SMTP_SINK]
            if os.geteuid() == 0:
                cmd += ["-u", "nobody"]
            cmd += [f"127.0.0.1:{self.port}", "4096"]
        else:
            db = os.path.join(self.tmp, f"bench-{self.port}.db")
            cmd = [self.args.spamsink,
                   "--listen", f"127.0.0.1:{self.port}",
                   "--db", db] + self.args.spamsink_args.split()
            # "spamsink" runs its default executor (auto: io_uring where
            # the kernel allows it); "spamsink-asio" the epoll fallback.
            if self.kind == "spamsink-asio":
                cmd += ["--server-executor", "asio"]
            # The default executor with the ledger off (--ledger): the
            # ledger-on cost is spamsink against this one.
            if self.kind == "spamsink-noledger":
                cmd += ["--ledger-enabled", "false"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     cwd=self.tmp)
        if not wait_port(self.port):
            self.stop()
            raise RuntimeError(f"{self.kind} did not start: {' '.join(cmd)}")
        time.sleep(0.1)  # let the accept-side connection from wait_port close

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def supported_flags(binary, flags):
    """Keeps the "--flag value" pairs that `binary --help` knows, so the bench
    runs against older and newer spamsink builds alike."""
    help_text = subprocess.run([binary, "--help"], capture_output=True,
                               text=True).stdout
    words, kept = flags.split(), []
    for i in range(0, len(words) - 1, 2):
        if words[i] in help_text:
            kept += words[i:i + 2]
        else:
            print(f"bench: spamsink has no {words[i]}; not set",
                  file=sys.stderr)
    return " ".join(kept)


def run_child(cmd, timeout):
    """Runs cmd; returns (returncode, stdout, stderr, cpu seconds)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    return p.returncode, out.decode(), err.decode()


def child_cpu_total():
    """CPU of every reaped child so far: a difference brackets one child."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_load(server, smtpsend, args, n):
    """One smtpsend run against a fresh server: the figures of one cell."""
    server.start()
    try:
        pid = server.proc.pid
        cpu0, rss0 = proc_cpu(pid), proc_rss_kb(pid)
        c0 = child_cpu_total()
        cmd = [smtpsend, "-p", str(server.port), "-n", str(n), "--json",
               "--ignore-failures"] + args
        rc, out, err = run_child(cmd, timeout=600)
        client_cpu = child_cpu_total() - c0
        cpu1, rss1 = proc_cpu(pid), proc_rss_kb(pid)
    finally:
        server.stop()
    if rc != 0 or not out.strip():
        raise RuntimeError(f"smtpsend failed ({rc}): {err.strip()[:300]}")
    j = json.loads(out)
    accepted = j["messages"]["accepted"]
    server_cpu = cpu1 - cpu0
    lat = j["latency_ms"]
    return {
        "msgs_per_s": j["rates"]["messages_per_s"],
        "mb_per_s": j["rates"]["mb_per_s"],
        "msgs_per_server_cpu_s": accepted / server_cpu if server_cpu > 0 else float("nan"),
        "server_cpu_s": server_cpu,
        "server_rss_growth_kb": rss1 - rss0,
        "eod_p50_ms": lat["end_of_data"]["p50"],
        "eod_p99_ms": lat["end_of_data"]["p99"],
        "session_p50_ms": lat["session"]["p50"],
        "session_p99_ms": lat["session"]["p99"],
        "client_cpu_us_per_msg": 1e6 * client_cpu / max(1, j["messages"]["total"]),
        "failed": j["messages"]["failed_unexpectedly"],
        "accepted": accepted,
    }


def run_idle(server, smtpsend, conns, hold):
    """conns sessions say EHLO and idle: server RSS growth per held one."""
    server.start()
    try:
        pid = server.proc.pid
        rss0, fds0 = proc_rss_kb(pid), socket_fds(pid)
        cmd = [smtpsend, "-p", str(server.port), "-s", str(conns), "-n",
               str(conns), "--hold", str(hold), "--source-range",
               "127.64.0.0/16", "--phase-timeout", str(hold + 10), "--json",
               "--ignore-failures"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        # Sample until the count of held connections stops growing.
        best, best_rss, last, stable = 0, rss0, -1, 0
        end = time.monotonic() + hold * 0.8
        while time.monotonic() < end and p.poll() is None:
            time.sleep(0.5)
            n, rss = socket_fds(pid) - fds0, proc_rss_kb(pid)
            if n > best:
                best, best_rss = n, rss
            stable = stable + 1 if n == last else 0
            last = n
            if n >= conns or (stable >= 4 and n > 0):
                best, best_rss = n, rss
                break
        out, err = p.communicate(timeout=hold + 120)
    finally:
        server.stop()
    growth = best_rss - rss0
    return {
        "held_connections": best,
        "server_rss_growth_kb": growth,
        "rss_kb_per_held_conn": growth / best if best else float("nan"),
    }


def client_cpu_comparison(smtpsend, args, tmp, repeats, smoke):
    """smtpsend vs smtp-source client CPU per message, same smtp-sink run."""
    sink = Server("smtp-sink", args, tmp)
    rounds = 1 if smoke else 5
    results = {"smtpsend": [], "smtp-source": []}
    for rep in range(repeats):
        order = ["smtpsend", "smtp-source"]
        if rep % 2:
            order.reverse()
        sink.start()
        try:
            for tool in order:
                c0 = child_cpu_total()
                for _ in range(rounds):
                    if tool == "smtpsend":
                        cmd = [smtpsend, "-p", str(sink.port), "-s", "10", "-m",
                               "100", "-n", "1000", "-b", "1024", "--brief"]
                    else:
                        cmd = [SMTP_SOURCE, "-s", "10", "-m", "1000", "-d",
                               "-l", "1024", f"127.0.0.1:{sink.port}"]
                    run_child(cmd, timeout=300)
                cpu = child_cpu_total() - c0
                results[tool].append(1e6 * cpu / (1000 * rounds))
        finally:
            sink.stop()
    return {k: statistics.median(v) for k, v in results.items()}


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "model": model,
            "kernel": platform.release(),
            "date": datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%d %H:%M UTC")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true",
                    help="tiny run that only checks the bench works")
    ap.add_argument("--repeats", type=int, default=None,
                    help="rounds per scenario (default 3; smoke 1)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="build directory holding spamsink and smtpsend")
    ap.add_argument("--spamsink", default=None, help="spamsink binary")
    ap.add_argument("--smtpsend", default=None, help="smtpsend binary")
    ap.add_argument("--spamsink-args",
                    default="--tarpit-enabled false "
                            "--server-max-connections-per-ip 100000 "
                            "--server-max-connections 100000 "
                            "--api-enabled false --log-sessions false",
                    help="extra spamsink flags (a pure sink: no tarpit)")
    ap.add_argument("--idle", type=int, default=None,
                    help="held idle connections (default 10000; smoke 200)")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--ledger", action="store_true",
                    help="also run spamsink-noledger (--ledger-enabled "
                         "false) for the ledger on/off comparison")
    ap.add_argument("--no-write", action="store_true",
                    help="do not rewrite docs/BENCHMARKS.md")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "BENCHMARKS.md"))
    args = ap.parse_args()
    repeats = args.repeats or (1 if args.smoke else 3)
    idle = args.idle or (200 if args.smoke else 10000)
    hold = 4 if args.smoke else 25
    args.spamsink = args.spamsink or os.path.join(args.build, "spamsink")
    smtpsend = args.smtpsend or os.path.join(args.build, "smtpsend")
    for path in (smtpsend, SMTP_SINK):
        if not os.access(path, os.X_OK):
            sys.exit(f"bench: {path} is missing (build it / install postfix)")
    servers = ["spamsink", "smtp-sink"]
    if not os.access(args.spamsink, os.X_OK):
        print(f"bench: {args.spamsink} missing; measuring smtp-sink only",
              file=sys.stderr)
        servers = ["smtp-sink"]
    else:
        args.spamsink_args = supported_flags(args.spamsink, args.spamsink_args)
        if "--server-executor" in subprocess.run(
                [args.spamsink, "--help"], capture_output=True,
                text=True).stdout:
            servers.insert(1, "spamsink-asio")
    if "--bulk" not in subprocess.run([smtpsend, "--help"],
                                      capture_output=True, text=True).stdout:
        print("bench: smtpsend has no --bulk; bulk loads not run",
              file=sys.stderr)
        args.no_bulk = True
    if args.ledger and "spamsink" in servers:
        servers.insert(servers.index("spamsink") + 1, "spamsink-noledger")
    # floor_sink (bench/floor_sink.cc): the syscall floor of the protocol,
    # a yardstick for what any sink can reach on this kernel.
    if os.access(os.path.join(args.build, "floor_sink"), os.X_OK):
        servers.append("floor")

    tmp = tempfile.mkdtemp(prefix="spamsink-bench-")
    os.chmod(tmp, 0o777)
    results = {}  # scenario -> server -> [cells]
    started = time.monotonic()
    try:
        chosen = scenarios(args.smoke)
        if getattr(args, "no_bulk", False):
            chosen = [c for c in chosen if "--bulk" not in c[1]]
        if args.only:
            names = set(args.only.split(","))
            chosen = [s for s in chosen if s[0] in names]
        for rep in range(repeats):
            for name, sargs, n in chosen:
                order = servers if rep % 2 == 0 else list(reversed(servers))
                for kind in order:
                    cell = run_load(Server(kind, args, tmp), smtpsend, sargs, n)
                    results.setdefault(name, {}).setdefault(kind, []).append(cell)
                    print(f"[{time.monotonic() - started:6.1f}s] rep {rep + 1} "
                          f"{name:20s} {kind:10s} "
                          f"{cell['msgs_per_s']:9.0f} msg/s "
                          f"{cell['msgs_per_server_cpu_s']:9.0f} msg/cpu-s",
                          file=sys.stderr)
            if not args.only or "idle" in args.only:
                name = f"idle {idle} held"
                held = [s for s in servers
                        if s not in ("floor", "spamsink-noledger")]
                order = held if rep % 2 == 0 else list(reversed(held))
                for kind in order:
                    cell = run_idle(Server(kind, args, tmp), smtpsend, idle, hold)
                    results.setdefault(name, {}).setdefault(kind, []).append(cell)
                    print(f"[{time.monotonic() - started:6.1f}s] rep {rep + 1} "
                          f"{name:20s} {kind:10s} held "
                          f"{cell['held_connections']} "
                          f"{cell['rss_kb_per_held_conn']:.2f} KiB/conn",
                          file=sys.stderr)
        cpu = None
        if os.access(SMTP_SOURCE, os.X_OK):
            cpu = client_cpu_comparison(smtpsend, args, tmp, repeats, args.smoke)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    info = machine()
    command = "bench/run.py" + (" --smoke" if args.smoke else "") + \
        (f" --repeats {repeats}" if args.repeats else "") + \
        (" --ledger" if args.ledger else "")
    text = report.render_tables(results, servers, cpu, repeats)
    print(text)
    if not args.no_write:
        png = os.path.join(os.path.dirname(args.out), "benchmarks.png")
        plotted = report.plot(results, servers, png)
        report.write_markdown(args.out, info, command, text,
                              os.path.basename(png) if plotted else None,
                              results, servers, cpu,
                              chosen + [(f"idle {idle} held",
                                         ["-s", str(idle), "--hold", str(hold),
                                          "--source-range", "127.64.0.0/16"],
                                         idle)])
        print(f"bench: wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
