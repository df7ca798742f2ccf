#!/usr/bin/python3
"""Tarpit benchmark (issue 5): what a held connection costs us and the sender.

Three parts, each printed as a table with the exact commands it ran:

  hold    N bot sessions held at once by the greeting delay (loopback, one
          source address each): server RSS growth per held connection
          (VmRSS before vs. while holding), server CPU while they are held
          (utime+stime from /proc/PID/stat, and the threads' schedstat for
          sub-tick precision) and sender connection-seconds per server
          CPU-second (window, whole run, and GET /api/v1/cost).
  drop    spamsink's own 20% nftables drop rule (--tarpit-drop-percent) in a
          pair of network namespaces joined by a veth pair: the sender's
          retransmitted bytes vs. bytes delivered (TCP_INFO bytes_retrans /
          bytes_acked of a small sender in this script) and smtpsend's
          retransmitted segments. Needs root, ip and nft; skipped otherwise.
  delays  loopback: configured per-stage delays vs. smtpsend's per-phase
          latencies and its "held by server" figure.

It is a program that prints figures, not a test: it exits 0 unless a part
could not run at all (exit 1), whatever the figures are.

Usage: bench/tarpit_bench.py [--quick] [--build DIR] [--parts hold,drop,delays]
       [--sessions N] [--hold-window S] [--json FILE]
--quick: small numbers, about 30 s. Full: about 5 minutes.

Only /usr/bin/python3's standard library. Every wait is bounded; only
processes started here are stopped (by pid); the namespaces (and with them
the nftables table spamsink applies inside) are deleted on exit.
"""

import argparse
import json
import os
import re
import resource
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Everything we start or create, for cleanup.
_procs = []        # subprocess.Popen
_namespaces = []   # names of network namespaces we created
_commands = []     # (part, command line) as run, for the report


def log(*a):
    print("tarpit_bench:", *a, file=sys.stderr, flush=True)


def note_cmd(part, argv):
    _commands.append((part, shlex.join(str(x) for x in argv)))


# ---------------------------------------------------------------- processes

def spawn(part, argv, **kw):
    note_cmd(part, argv)
    p = subprocess.Popen([str(x) for x in argv], **kw)
    _procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=15):
    """Stops a process we started, by pid: sig, then SIGKILL after timeout."""
    if p is None or p.poll() is not None:
        return p.returncode if p else None
    try:
        p.send_signal(sig)
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"pid {p.pid} ignored signal {sig}; killing it")
        p.kill()
        return p.wait(timeout=10)


def wait_proc(p, timeout, what):
    """Waits for p to end; after timeout sends SIGTERM (smtpsend then lets
    its sessions finish; bounded by SIGKILL)."""
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"{what} still running after {timeout:.0f} s: stopping it")
        return stop(p, signal.SIGTERM, timeout=10)


def cleanup():
    for p in reversed(_procs):
        try:
            stop(p, timeout=5)
        except Exception as e:  # keep cleaning
            log(f"stopping pid {p.pid}: {e}")
    _procs.clear()
    for ns in reversed(_namespaces):
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL,
                       timeout=30)
    _namespaces.clear()


def _on_signal(signum, frame):
    cleanup()
    sys.exit(128 + signum)


def raise_fd_limit(want):
    """Raises RLIMIT_NOFILE (inherited by the server and client) to want,
    or as far as allowed; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if want > hard and os.geteuid() == 0:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                nr_open = int(f.read())
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (min(want, nr_open), min(want, nr_open)))
            return min(want, nr_open)
        except (OSError, ValueError) as e:
            log(f"cannot raise the hard descriptor limit: {e}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(max(soft, want), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new


# ---------------------------------------------------------------- /proc

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_ticks(pid):
    """utime + stime of the whole process, in seconds (clock-tick resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_sched(pid):
    """Sum of the threads' run time from schedstat, in seconds (ns resolution)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that just ended
    return total / 1e9


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listen(port, proc, timeout=15, ns=None):
    """Waits until something listens on port (ss, not a probe connection:
    the tarpit would hold a probe like any other session)."""
    pre = ["ip", "netns", "exec", ns] if ns else []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        out = subprocess.run(pre + ["ss", "-Hltn", f"sport = :{port}"],
                             capture_output=True, text=True, timeout=10).stdout
        if "LISTEN" in out:
            return True
        time.sleep(0.1)
    return False


def http_get(port, path, timeout=10):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                timeout=timeout) as r:
        return r.read().decode()


def metric(port, name):
    text = http_get(port, "/metrics")
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


# ---------------------------------------------------------------- helpers

def tarpit_flags(**stages):
    """--tarpit-X-min/max flags: stages maps stage -> seconds (fixed)."""
    out = []
    for st, v in stages.items():
        st = st.replace("_", "-")
        out += [f"--tarpit-{st}-min", v, f"--tarpit-{st}-max", v]
    return out


def run_json(part, argv, timeout, what):
    """Runs a client printing one JSON object; returns (rc, obj or None)."""
    p = spawn(part, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
              text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"{what} still running after {timeout:.0f} s: stopping it")
        stop(p, signal.SIGTERM, timeout=15)
        out, err = p.communicate(timeout=5)
    try:
        return p.returncode, json.loads(out)
    except ValueError:
        log(f"{what}: no JSON (exit {p.returncode}): {err.strip()[-500:]}")
        return p.returncode, None


def fmt(v, spec=".1f"):
    return "n/a" if v is None else format(v, spec)


# ---------------------------------------------------------------- part: hold

def part_hold(a, work):
    """N sessions held by a fixed greeting delay; RSS, CPU, ratios."""
    spamsink, smtpsend = a.build + "/spamsink", a.build + "/smtpsend"
    n = a.sessions
    # Server: n + reserve; client: n + a few; both inherit our limit.
    limit = raise_fd_limit(n + 4096)
    server_reserve = 32 + 16 + 64  # fd_reserve default + server's margin + files
    if n + server_reserve > limit:
        n_new = limit - server_reserve
        log(f"descriptor limit {limit}: holding {n_new} sessions, not {n}")
        n = n_new
    hold_s = a.hold_delay
    port, api = free_port(), free_port()
    db = os.path.join(work, "hold.db")
    srv_argv = [
        spamsink, "--listen", f"127.0.0.1:{port}", "--api-listen",
        f"127.0.0.1:{api}", "--db", db, "--log-sessions", "false",
        # Far below degrade_at (0.8 of max_connections): full delays for all.
        "--server-max-connections", 2 * n + 100,
        "--tarpit-enabled", "true", "--tarpit-max-held", max(10000, n),
        "--tarpit-stutter", "false",
        *tarpit_flags(greeting=hold_s, helo=0, mail=0, rcpt=0, data=0,
                      data_end=0, reply=0),
    ]
    srv_log = open(os.path.join(work, "hold-server.log"), "w")
    srv = spawn("hold", srv_argv, stdout=srv_log, stderr=subprocess.STDOUT)
    if not wait_listen(port, srv) or not wait_listen(api, srv):
        log("hold: server did not start; see " + srv_log.name)
        return None
    http_get(api, "/metrics")           # warm the API up before the baseline
    time.sleep(1.0)
    rss0 = rss_kib(srv.pid)
    t0_tick, t0_sched = cpu_ticks(srv.pid), cpu_sched(srv.pid)

    cli_argv = [
        smtpsend, "127.0.0.1", "-p", port, "-s", n, "-n", n, "-b", 1024,
        "--source-range", "127.77.0.0/16",
        # Past the greeting, a session that lost step (see the duplicate
        # banner check in the delays part) waits this long for a reply.
        "--phase-timeout", hold_s + (5 if a.quick else 15),
        "--json", "--no-progress", "--ignore-failures", "--seed", 1,
    ]
    cli_out = open(os.path.join(work, "hold-client.json"), "w+")
    cli_err = open(os.path.join(work, "hold-client.err"), "w")
    start = time.monotonic()
    cli = spawn("hold", cli_argv, stdout=cli_out, stderr=cli_err)

    # Wait until all n are connected (and held: greeting not yet sent).
    ramp_deadline = start + min(hold_s / 2, 60)
    opened, last_change, last = 0, time.monotonic(), -1
    while time.monotonic() < ramp_deadline:
        opened = int(metric(api, "spamsink_open_connections") or 0)
        if opened != last:
            last, last_change = opened, time.monotonic()
        if opened >= n or (opened > 0 and time.monotonic() - last_change > 5):
            break
        if cli.poll() is not None:
            break
        time.sleep(0.25)
    ramp_s = time.monotonic() - start
    time.sleep(1.0)  # let the last accepts settle
    window = min(a.hold_window, hold_s - (time.monotonic() - start) - 2)
    held0 = int(metric(api, "spamsink_open_connections") or 0)
    w0_tick, w0_sched, w0 = cpu_ticks(srv.pid), cpu_sched(srv.pid), \
        time.monotonic()
    rss1 = rss_kib(srv.pid)
    time.sleep(max(window, 1))
    w1_tick, w1_sched, w1 = cpu_ticks(srv.pid), cpu_sched(srv.pid), \
        time.monotonic()
    held1 = int(metric(api, "spamsink_open_connections") or 0)
    rss2 = rss_kib(srv.pid)
    log(f"hold: {held0} -> {held1} held over {w1 - w0:.1f} s; "
        f"RSS {rss0} -> {rss1} -> {rss2} KiB")

    wait_proc(cli, hold_s + 180, "smtpsend")
    end_tick, end_sched = cpu_ticks(srv.pid), cpu_sched(srv.pid)
    time.sleep(2.5)  # one ledger flush interval (1 s) and then some
    cost = json.loads(http_get(api, "/api/v1/cost"))
    stop(srv)
    srv_log.close()
    cli_out.seek(0)
    try:
        rep = json.load(cli_out)
    except ValueError:
        rep = None
        log("hold: smtpsend printed no report; see " + cli_err.name)

    held = min(held0, held1)
    win_s = w1 - w0
    d_tick, d_sched = w1_tick - w0_tick, w1_sched - w0_sched
    r = {
        "requested": a.sessions, "sessions": n, "fd_limit": limit,
        "greeting_delay_s": hold_s, "ramp_s": ramp_s, "held": held,
        "window_s": win_s,
        "rss_base_kib": rss0, "rss_held_kib": rss1, "rss_held_end_kib": rss2,
        "rss_per_conn_b": (rss1 - rss0) * 1024 / held if held else None,
        "cpu_window_ticks_s": d_tick, "cpu_window_sched_s": d_sched,
        "cpu_pct_ticks": 100 * d_tick / win_s,
        "cpu_pct_sched": 100 * d_sched / win_s,
        # Window: every held connection costs the sender win_s seconds.
        "ratio_window": held * win_s / d_sched if d_sched > 0 else None,
        "ratio_window_ticks": (held * win_s / d_tick) if d_tick > 0 else None,
        "ratio_window_ticks_floor": held * win_s / (1 / CLK_TCK),
        "cpu_run_sched_s": end_sched - t0_sched,
        "cpu_run_ticks_s": end_tick - t0_tick,
        "api_cost": cost,
    }
    if rep:
        sess = rep["latency_ms"]["session"]
        conn_s = sess["mean"] * sess["count"] / 1000
        r.update({
            "client_sessions": rep["sessions"],
            "client_messages": rep["messages"],
            "client_elapsed_s": rep["elapsed_s"],
            "sender_conn_s": conn_s,
            "sender_held_s": rep["held_by_server"]["total_s"],
            "ratio_run": conn_s / r["cpu_run_sched_s"]
            if r["cpu_run_sched_s"] > 0 else None,
        })
    return r


def print_hold(r, targets=True):
    print(f"\n== hold: {r['held']} sessions held at once "
          f"(greeting delay {r['greeting_delay_s']:g} s, "
          f"measured over {r['window_s']:.1f} s) ==")
    if r["sessions"] < r["requested"]:
        print(f"   (asked for {r['requested']}; the descriptor limit "
              f"{r['fd_limit']} allows {r['sessions']})")
    api = r["api_cost"]
    rows = [
        ("held connections", f"{r['held']}", ""),
        ("ramp (client start -> all connected)", f"{r['ramp_s']:.1f} s", ""),
        ("server VmRSS before / holding",
         f"{r['rss_base_kib']} / {r['rss_held_kib']} KiB", ""),
        ("RSS growth per held connection",
         f"{fmt(r['rss_per_conn_b'], '.0f')} B", "<= 2048 B"),
        ("server CPU while held (utime+stime)",
         f"{r['cpu_pct_ticks']:.2f} % of a core "
         f"({r['cpu_window_ticks_s']:.2f} s)", "< 5 %"),
        ("server CPU while held (schedstat)",
         f"{r['cpu_pct_sched']:.3f} % of a core "
         f"({r['cpu_window_sched_s'] * 1000:.1f} ms)", "< 5 %"),
        ("conn-s per CPU-s, hold window (schedstat)",
         fmt(r["ratio_window"], ".0f"), ">= 1000"),
        ("conn-s per CPU-s, hold window (ticks)",
         fmt(r["ratio_window_ticks"], ".0f") if r["ratio_window_ticks"]
         else f">= {r['ratio_window_ticks_floor']:.0f} (0 ticks)", ">= 1000"),
    ]
    if r.get("sender_conn_s") is not None:
        rows += [
            ("sender connection-seconds (smtpsend)",
             f"{r['sender_conn_s']:.0f} s "
             f"(held by server {r['sender_held_s']:.0f} s)", ""),
            ("server CPU, client start -> end",
             f"{r['cpu_run_sched_s']:.2f} s", ""),
            ("conn-s per CPU-s, whole run", fmt(r["ratio_run"], ".0f"),
             ">= 1000"),
        ]
        s = r["client_sessions"]
        rows.append(("client sessions: accepted / failed",
                     f"{s['accepted']} / {s['total'] - s['accepted']}", ""))
    rows.append(("GET /api/v1/cost (process lifetime)",
                 f"{api['connection_seconds_per_cpu_second']} "
                 f"({api['sender_connection_seconds']:.0f} conn-s / "
                 f"{api['server_cpu_seconds']:.2f} CPU-s)", ">= 1000"))
    table(rows, ("figure", "value", "target") if targets else None)


def table(rows, header=None):
    rows = [tuple(str(c) for c in r) for r in rows]
    if header:
        rows = [header] + rows
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        print("  " + "  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
        if header and k == 0:
            print("  " + "  ".join("-" * x for x in w))


# ---------------------------------------------------------------- part: drop

TCP_INFO_LEN = 232


def tcp_info(sock):
    b = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_LEN)
    b = b.ljust(TCP_INFO_LEN, b"\0")
    return {
        "total_retrans": struct.unpack_from("I", b, 100)[0],
        "bytes_acked": struct.unpack_from("Q", b, 120)[0],
        "data_segs_out": struct.unpack_from("I", b, 156)[0],
        "bytes_sent": struct.unpack_from("Q", b, 200)[0],
        "bytes_retrans": struct.unpack_from("Q", b, 208)[0],
    }


def sender_main(argv):
    """--sender HOST PORT CONNS MSGS_PER_CONN SIZE [SOURCE]: a plain SMTP
    sender (one thread per connection) that prints the summed TCP_INFO of
    its connections as JSON. Runs inside the client namespace."""
    host, port, conns, per, size = argv[0], int(argv[1]), *map(int, argv[2:5])
    source = (argv[5], 0) if len(argv) > 5 else None
    body = b"".join(b"x" * 76 + b"\r\n" for _ in range(max(1, size // 78)))
    msg = (b"From: <bench@example.org>\r\nTo: <sink@example.org>\r\n"
           b"Subject: tarpit bench\r\n\r\n" + body + b".\r\n")
    results, errors = [], []

    def one(k):
        try:
            s = socket.create_connection((host, port), timeout=120,
                                         source_address=source)
            f = s.makefile("rb")

            def reply():
                while True:
                    line = f.readline(1024)
                    if not line:
                        raise OSError("server closed")
                    if line[3:4] != b"-":
                        return int(line[:3])

            def cmd(c, want):
                s.sendall(c)
                code = reply()
                if code // 100 != want:
                    raise OSError(f"{c[:20]!r}: {code}")
            if reply() != 220:
                raise OSError("banner")
            cmd(b"EHLO bench.example\r\n", 2)
            ok = 0
            for _ in range(per):
                cmd(b"MAIL FROM:<bench@example.org>\r\n", 2)
                cmd(b"RCPT TO:<sink@example.org>\r\n", 2)
                cmd(b"DATA\r\n", 3)
                cmd(msg, 2)
                ok += 1
            cmd(b"QUIT\r\n", 2)  # its reply: everything we sent was acked
            info = tcp_info(s)
            info["messages"] = ok
            info["content_bytes"] = ok * len(msg)
            results.append(info)
            s.close()
        except OSError as e:
            errors.append(f"connection {k}: {e}")

    th = [threading.Thread(target=one, args=(k,)) for k in range(conns)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    tot = {k: sum(r[k] for r in results) for k in
           ("total_retrans", "bytes_acked", "data_segs_out", "bytes_sent",
            "bytes_retrans", "messages", "content_bytes")}
    tot["connections"] = len(results)
    tot["errors"] = errors
    print(json.dumps(tot))
    return 0 if not errors else 1


def run(argv, timeout=30, **kw):
    return subprocess.run([str(x) for x in argv], timeout=timeout,
                          capture_output=True, text=True, **kw)


def snmp_tcp(ns):
    out = run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"]).stdout
    rows = [l.split() for l in out.splitlines() if l.startswith("Tcp:")]
    d = dict(zip(rows[0][1:], map(int, rows[1][1:])))
    return d["RetransSegs"], d["OutSegs"]


def nft_dropped(ns, table):
    out = run(["ip", "netns", "exec", ns, "nft", "list", "table", "inet",
               table]).stdout
    return sum(int(x) for x in re.findall(r"counter packets (\d+)", out))


def part_drop(a, work):
    if os.geteuid() != 0:
        log("drop: SKIP: needs root (network namespaces, nftables)")
        return None
    for tool in ("ip", "nft", "ss"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"],
                          capture_output=True).returncode:
            log(f"drop: SKIP: {tool} is not installed")
            return None
    spamsink, smtpsend = a.build + "/spamsink", a.build + "/smtpsend"
    tag = os.getpid()
    ns_srv, ns_cli = f"tpbench-srv-{tag}", f"tpbench-cli-{tag}"
    srv_ip, cli_ip, cli_ip2, port = "10.79.0.1", "10.79.0.2", "10.79.0.3", 2525
    table_name = f"tpbench{tag}"
    for ns in (ns_srv, ns_cli):
        r = run(["ip", "netns", "add", ns])
        if r.returncode:
            log(f"drop: SKIP: cannot create a namespace: {r.stderr.strip()}")
            return None
        _namespaces.append(ns)
    setup = [
        ["ip", "-n", ns_srv, "link", "add", "vs", "type", "veth", "peer",
         "name", "vc", "netns", ns_cli],
        ["ip", "-n", ns_srv, "addr", "add", f"{srv_ip}/24", "dev", "vs"],
        ["ip", "-n", ns_cli, "addr", "add", f"{cli_ip}/24", "dev", "vc"],
        # The second client's own address: a second visit from cli_ip would
        # be a returning sender, whose delays the tarpit (rightly) lengthens.
        ["ip", "-n", ns_cli, "addr", "add", f"{cli_ip2}/24", "dev", "vc"],
        ["ip", "-n", ns_srv, "link", "set", "lo", "up"],
        ["ip", "-n", ns_cli, "link", "set", "lo", "up"],
        ["ip", "-n", ns_srv, "link", "set", "vs", "up"],
        ["ip", "-n", ns_cli, "link", "set", "vc", "up"],
    ]
    for c in setup:
        note_cmd("drop", c)
        r = run(c)
        if r.returncode:
            log(f"drop: SKIP: {shlex.join(c)}: {r.stderr.strip()}")
            return None
    if run(["ip", "netns", "exec", ns_srv, "nft", "list", "tables"]).returncode:
        log("drop: SKIP: nftables unusable in a namespace")
        return None

    conns, per, size = a.drop_conns, a.drop_msgs, a.drop_size
    slow = dict(greeting=0, helo=0, mail=0, rcpt=0, data=0, data_end=0,
                reply=0)
    # (name, percent, messages per connection, server flags, one MSS-sized
    # segment per packet). With offload on (the veth default) one "packet"
    # the rule sees may carry a whole 20 KB message (as after GRO on a real
    # NIC); gso_max_segs 1 makes every packet one wire-sized segment.
    configs = [("no drop", 0, per, [], False),
               ("20% drop", 20, per, [], False),
               ("20% drop, 1 segment/packet", 20, per, [], True)]
    if not a.quick:
        # The tarpit's own pressure as well: clamped window, slow reader
        # (1 KiB per 0.25 s, so fewer messages).
        configs.append(("20% drop + slow reader", 20, 2,
                        ["--tarpit-enabled", "true", "--tarpit-stutter",
                         "false", *tarpit_flags(**slow)], False))
    results = []
    for name, pct, per, extra, one_seg in configs:
        c = ["ip", "-n", ns_cli, "link", "set", "vc", "gso_max_segs",
             1 if one_seg else 65535]
        note_cmd("drop", c)
        run(c)
        d = os.path.join(work, f"drop{len(results)}")
        os.makedirs(d)
        os.chmod(d, 0o755)
        srv_argv = ["ip", "netns", "exec", ns_srv, spamsink, "--listen",
                    f"{srv_ip}:{port}", "--db", f"{d}/spamsink.db",
                    "--log-sessions", "false", "--tarpit-nft-table",
                    table_name, "--tarpit-drop-percent", pct, *extra]
        srv_log = open(f"{d}/server.log", "w")
        # ip netns exec execs spamsink: this pid is the server's.
        srv = spawn("drop", srv_argv, stdout=srv_log, stderr=subprocess.STDOUT)
        if not wait_listen(port, srv, ns=ns_srv):
            log(f"drop: server did not start; see {srv_log.name}")
            stop(srv)
            return None
        rule = run(["ip", "netns", "exec", ns_srv, "nft", "list", "table",
                    "inet", table_name])
        if pct and rule.returncode:
            log(f"drop: spamsink did not apply its rule; see {srv_log.name}")
        # smtpsend: segments (its TCP_INFO) and the namespace's counters.
        r0, o0 = snmp_tcp(ns_cli)
        rc, rep = run_json("drop", [
            "ip", "netns", "exec", ns_cli, smtpsend, srv_ip, "-p", port,
            "-s", conns, "-m", per, "-n", conns * per, "-b", size,
            "--allow-remote", "--json", "--no-progress",
            "--phase-timeout", 60], 300, "smtpsend")
        r1, o1 = snmp_tcp(ns_cli)
        drop_a = nft_dropped(ns_srv, table_name)
        # This script's sender: bytes (TCP_INFO bytes_retrans, bytes_acked).
        rc2, own = run_json("drop", [
            "ip", "netns", "exec", ns_cli, sys.executable,
            os.path.abspath(__file__), "--sender", srv_ip, port, conns, per,
            size, cli_ip2], 300, "sender")
        drop_b = nft_dropped(ns_srv, table_name) - drop_a
        stop(srv)
        srv_log.close()
        gone = run(["ip", "netns", "exec", ns_srv, "nft", "list", "table",
                    "inet", table_name]).returncode != 0
        res = {"name": name, "percent": pct, "per": per,
               "rule_removed_at_exit": gone,
               "smtpsend_rc": rc, "sender_rc": rc2,
               "snmp_retrans": r1 - r0, "snmp_out": o1 - o0,
               "dropped_smtpsend": drop_a, "dropped_sender": drop_b}
        if rep:
            res.update({
                "smtpsend_accepted": rep["messages"]["accepted"],
                "smtpsend_retrans": rep["tcp_retransmissions"]["total"],
                "smtpsend_written": rep["bytes"]["written"],
                "smtpsend_elapsed": rep["elapsed_s"],
            })
        if own:
            res["sender"] = own
            res["bytes_ratio"] = (own["bytes_retrans"] / own["bytes_acked"]
                                  if own["bytes_acked"] else None)
        results.append(res)
        log(f"drop: {name}: done")
    return {"conns": conns, "per": a.drop_msgs, "size": size, "runs": results,
            "rule": rule.stdout if rule.returncode == 0 else ""}


def print_drop(r):
    print(f"\n== drop: {r['conns']} connections x {r['per']} messages of "
          f"{r['size']} B (slow reader: x 2), two namespaces + veth ==")
    rows = []
    for x in r["runs"]:
        s = x.get("sender") or {}
        rows.append((
            x["name"],
            f"{s.get('messages', 0)}/{r['conns'] * x['per']}",
            f"{s.get('bytes_acked', 0)}",
            f"{s.get('bytes_retrans', 0)}",
            fmt(100 * x["bytes_ratio"], ".1f") + " %"
            if x.get("bytes_ratio") is not None else "n/a",
            f"{x.get('smtpsend_accepted', 'n/a')}",
            f"{x.get('smtpsend_retrans', 'n/a')}",
            f"{x['snmp_retrans']}/{x['snmp_out']}",
            f"{x['dropped_smtpsend']}+{x['dropped_sender']}",
            "yes" if x["rule_removed_at_exit"] else "NO",
        ))
    table(rows, ("rule", "sent", "bytes delivered", "bytes retrans",
                 "retrans/delivered", "smtpsend ok", "smtpsend retr segs",
                 "ns RetransSegs/OutSegs", "pkts dropped", "rule removed"))
    print("  target: bytes retransmitted >= 20 % of bytes delivered at 20 %")


# ---------------------------------------------------------------- part: delays

def part_delays(a, work):
    spamsink, smtpsend = a.build + "/spamsink", a.build + "/smtpsend"
    stages = dict(greeting=1.0, helo=0.2, mail=0.2, rcpt=0.2, data=0.2,
                  data_end=0.5, reply=0.1)
    port = free_port()
    srv_argv = [
        spamsink, "--listen", f"127.0.0.1:{port}", "--db",
        os.path.join(work, "delays.db"), "--log-sessions", "false",
        "--tarpit-enabled", "true", "--tarpit-stutter", "false",
        # No slow reader pauses, no clamped window: delays only.
        "--tarpit-data-window", 0, "--tarpit-data-read-interval", 0,
        *tarpit_flags(**stages),
    ]
    srv_log = open(os.path.join(work, "delays-server.log"), "w")
    srv = spawn("delays", srv_argv, stdout=srv_log, stderr=subprocess.STDOUT)
    if not wait_listen(port, srv):
        log("delays: server did not start")
        return None
    n = a.delay_sessions
    # One fresh source address per session: the reputation of a returning
    # address would (rightly) lengthen its delays.
    rc, rep = run_json("delays", [
        smtpsend, "127.0.0.1", "-p", port, "-s", min(n, 4), "-n", n,
        "--no-pipelining", "--source-range", "127.78.0.0/24",
        "--json", "--no-progress", "--phase-timeout", 30], 120, "smtpsend")
    # Concurrent greetings: k connections at once, each must get one banner
    # (before 1b48323 the k-th greeting on a worker carried k banners).
    k = a.banner_conns
    note_cmd("delays", ["(python)", f"{k} connections to 127.0.0.1:{port} at "
                        "once; count the 220 lines each receives"])
    socks, banners = [], []
    for i in range(k):
        c = socket.socket()
        c.bind((f"127.79.0.{i + 1}", 0))
        c.connect(("127.0.0.1", port))
        socks.append(c)
    time.sleep(stages["greeting"] + 1.0)
    for c in socks:
        c.settimeout(2)
        got = b""
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                got += b
                c.settimeout(0.2)
        except OSError:
            pass
        banners.append(sum(1 for l in got.split(b"\r\n") if l[:3] == b"220"))
        c.close()
    stop(srv)
    srv_log.close()
    if not rep:
        return None
    lat = rep["latency_ms"]
    phases = [("banner", "greeting"), ("ehlo", "helo"), ("mail", "mail"),
              ("rcpt", "rcpt"), ("data", "data"), ("end_of_data", "data_end")]
    rows = []
    for ph, st in phases:
        h = lat[ph]
        rows.append({"phase": ph, "configured_s": stages[st],
                     "p50_s": h["p50"] / 1000, "max_s": h["max"] / 1000,
                     "count": h["count"]})
    expected = sum(stages.values())  # greeting + 5 stages + QUIT (other)
    held = rep["held_by_server"]["per_session_ms"]
    return {"rows": rows, "sessions": n, "accepted": rep["messages"]["accepted"],
            "banner_conns": k, "banners": banners,
            "expected_held_s": expected, "held_p50_s": held["p50"] / 1000,
            "held_max_s": held["max"] / 1000, "rc": rc}


def print_delays(r):
    print(f"\n== delays: {r['sessions']} sessions (4 at a time) on "
          f"loopback, fixed delays, no stutter, no pipelining ==")
    rows = [(x["phase"], f"{x['configured_s']:.3f}", f"{x['p50_s']:.3f}",
             f"{x['max_s']:.3f}", f"{1000 * (x['p50_s'] - x['configured_s']):+.1f}")
            for x in r["rows"]]
    rows.append(("held by server / session", f"{r['expected_held_s']:.3f}",
                 f"{r['held_p50_s']:.3f}", f"{r['held_max_s']:.3f}",
                 f"{1000 * (r['held_p50_s'] - r['expected_held_s']):+.1f}"))
    table(rows, ("phase", "configured s", "measured p50 s", "max s",
                 "p50 - configured ms"))
    print(f"  accepted {r['accepted']}/{r['sessions']} messages; the "
          f"expected hold adds the QUIT reply (tarpit 'other' stage)")
    b = r["banners"]
    bad = sum(1 for x in b if x != 1)
    print(f"  concurrent greetings: {r['banner_conns']} connections at once, "
          f"{bad} received more than one banner (220 lines per connection: "
          f"{' '.join(map(str, b))})" + ("  <-- BUG" if bad else ""))


# ---------------------------------------------------------------- main

def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--sender":
        return sender_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="small numbers, about 30 s")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--parts", default="hold,drop,delays")
    ap.add_argument("--sessions", type=int, help="held sessions (10000)")
    ap.add_argument("--hold-delay", type=float,
                    help="greeting delay that holds them, s (90)")
    ap.add_argument("--hold-window", type=float,
                    help="CPU measurement window while held, s (30)")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args()
    q = a.quick
    a.sessions = a.sessions or (500 if q else 10000)
    a.hold_delay = a.hold_delay or (6.0 if q else 90.0)
    a.hold_window = a.hold_window or (2.0 if q else 30.0)
    a.drop_conns, a.drop_msgs = (2, 5) if q else (4, 20)
    a.drop_size = 20000 if q else 50000
    a.delay_sessions = 4 if q else 20
    a.banner_conns = 8
    a.build = os.path.abspath(a.build)
    for b in ("spamsink", "smtpsend"):
        if not os.access(os.path.join(a.build, b), os.X_OK):
            log(f"{a.build}/{b} missing: cmake --build {a.build} -j2 "
                f"--target spamsink smtpsend")
            return 1
    parts = [p.strip() for p in a.parts.split(",") if p.strip()]

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    work = tempfile.mkdtemp(prefix="tarpit-bench.")
    os.chmod(work, 0o755)
    out, failed = {}, []
    t0 = time.monotonic()
    try:
        for name, fn in (("hold", part_hold), ("delays", part_delays),
                         ("drop", part_drop)):
            if name in parts:
                log(f"{name} ...")
                out[name] = fn(a, work)
                if out[name] is None and name != "drop":
                    failed.append(name)
    finally:
        cleanup()
    print(f"tarpit_bench ({'quick' if q else 'full'}), {os.cpu_count()} CPUs, "
          f"kernel {os.uname().release}, {time.monotonic() - t0:.0f} s; "
          f"logs in {work}")
    if out.get("hold"):
        print_hold(out["hold"])
    if out.get("delays"):
        print_delays(out["delays"])
    if out.get("drop"):
        print_drop(out["drop"])
    elif "drop" in parts:
        print("\n== drop: skipped (see the message above) ==")
    print("\n== commands ==")
    for part, c in _commands:
        print(f"  [{part}] {c}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"figures": out, "commands": _commands}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
