"""Rendering for bench/run.py: text tables, the Markdown page, the plot."""

import math
import os
import shutil
import statistics
import subprocess
import tempfile

LOAD_ROWS = [
    ("msgs_per_s", "messages/s", "{:.0f}"),
    ("mb_per_s", "MB/s", "{:.2f}"),
    ("msgs_per_server_cpu_s", "messages per server CPU-second", "{:.0f}"),
    ("server_cpu_s", "server CPU seconds", "{:.3f}"),
    ("server_rss_growth_kb", "server RSS growth (KiB)", "{:.0f}"),
    ("eod_p50_ms", "end-of-data reply p50 (ms)", "{:.3f}"),
    ("eod_p99_ms", "end-of-data reply p99 (ms)", "{:.3f}"),
    ("session_p50_ms", "session p50 (ms)", "{:.3f}"),
    ("session_p99_ms", "session p99 (ms)", "{:.3f}"),
    ("client_cpu_us_per_msg", "smtpsend CPU per message (us)", "{:.1f}"),
    ("failed", "failed messages", "{:.0f}"),
]
IDLE_ROWS = [
    ("held_connections", "held connections", "{:.0f}"),
    ("server_rss_growth_kb", "server RSS growth (KiB)", "{:.0f}"),
    ("rss_kb_per_held_conn", "RSS per held connection (KiB)", "{:.2f}"),
]
# The targets (issue 17). Messages per server CPU-second against
# floor_sink (the syscall floor of a one-recv-one-send server), with a bulk
# sender's load.
FLOOR_TARGETS = [
    ("1KiB 100x100 bulk", 1.0), ("1KiB 100x1 bulk", 1.0),
    ("100KiB 10x100 bulk", 1.0), ("1KiB 10x100 10rcpt bulk", 1.0),
]
# The same loads with the ledger on (spamsink, the shipped default) are
# within this share of the ledger off (spamsink-noledger, run.py --ledger).
LEDGER_TOLERANCE = 0.05
IDLE_TARGET_BYTES = 256
# End-of-data reply p99 at or below smtp-sink's in this scenario.
P99_SCENARIO = "1KiB 100x100"


def median(cells, key):
    vals = [c[key] for c in cells if not math.isnan(c[key])]
    return statistics.median(vals) if vals else float("nan")


def fmt(fmt_s, v):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) \
        else fmt_s.format(v)


def ratio(a, b):
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def compared(servers):
    """The servers set against smtp-sink in ratio columns."""
    if "smtp-sink" not in servers:
        return []
    return [s for s in ("spamsink", "spamsink-asio", "floor") if s in servers]


def against_floor(servers):
    """The servers set against floor_sink in ratio columns."""
    if "floor" not in servers:
        return []
    return [s for s in ("spamsink", "spamsink-noledger", "spamsink-asio")
            if s in servers]


def table(name, cells_by_server, servers, rows):
    servers = [s for s in servers if cells_by_server.get(s)]
    vs = compared(servers)
    vf = against_floor(servers)
    head = ["metric"] + servers + [f"{s}/smtp-sink" for s in vs] + \
        [f"{s}/floor" for s in vf]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for key, label, f in rows:
        vals = {s: median(cells_by_server.get(s, []), key) for s in servers}
        row = [label] + [fmt(f, vals[s]) for s in servers]
        row += [ratio(vals[s], vals["smtp-sink"]) for s in vs]
        row += [ratio(vals[s], vals["floor"]) for s in vf]
        lines.append("| " + " | ".join(row) + " |")
    return f"### {name}\n\n" + "\n".join(lines) + "\n"


def verdict(ok):
    return "not measured" if ok is None else ("met" if ok else "NOT met")


def target_lines(results, servers, cpu):
    """The issue's targets, each with its figure and whether it is met."""
    out = []
    for scen, want in FLOOR_TARGETS:
        if scen not in results or not results[scen].get("floor"):
            continue
        f = median(results[scen]["floor"], "msgs_per_server_cpu_s")
        for kind in ("spamsink", "spamsink-asio"):
            if not results[scen].get(kind):
                continue
            a = median(results[scen][kind], "msgs_per_server_cpu_s")
            r = a / f if f else float("nan")
            out.append(f"- {kind} messages per server CPU-second, {scen}:"
                       f" {fmt('{:.2f}x', r)} of floor_sink (target >= "
                       f"{want}x): "
                       f"{verdict(None if math.isnan(r) else r >= want)}")
    for scen, _ in FLOOR_TARGETS:
        cells = results.get(scen, {})
        if not cells.get("spamsink") or not cells.get("spamsink-noledger"):
            continue
        on = median(cells["spamsink"], "msgs_per_server_cpu_s")
        off = median(cells["spamsink-noledger"], "msgs_per_server_cpu_s")
        d = on / off - 1 if off else float("nan")
        out.append(f"- ledger on vs off, {scen}: {fmt('{:+.1%}', d)} "
                   f"messages per server CPU-second (target within "
                   f"{LEDGER_TOLERANCE:.0%}): "
                   f"{verdict(None if math.isnan(d) else d >= -LEDGER_TOLERANCE)}")
    for scen in results:
        if scen.startswith("idle"):
            for kind in ("spamsink", "spamsink-asio"):
                if not results[scen].get(kind):
                    continue
                v = median(results[scen][kind], "rss_kb_per_held_conn") * 1024
                out.append(f"- {kind} RSS per idle held connection: "
                           f"{v:.0f} B (target <= {IDLE_TARGET_BYTES} B): "
                           f"{verdict(v <= IDLE_TARGET_BYTES)}")
    cells = results.get(P99_SCENARIO, {})
    if cells.get("smtp-sink"):
        b = median(cells["smtp-sink"], "eod_p99_ms")
        for kind in ("spamsink", "spamsink-asio"):
            if not cells.get(kind):
                continue
            a = median(cells[kind], "eod_p99_ms")
            out.append(f"- {kind} end-of-data reply p99, {P99_SCENARIO}: "
                       f"{a:.1f} ms vs smtp-sink {b:.1f} ms (target <= "
                       f"smtp-sink's): {verdict(a <= b)}")
    # Measured by bench/stutter_bench.py: 10,000 connections stuttered at 1 B/s
    # (>= 0.95 B/s reaching each, >= 250,000 sender connection-seconds per
    # server CPU-second).
    out.append("- 10,000 stuttered connections: not measured by bench/run.py "
               "(bench/stutter_bench.py measures them)")
    if cpu:
        r = cpu["smtpsend"] / cpu["smtp-source"]
        out.append(f"- smtpsend client CPU per message: {cpu['smtpsend']:.1f} us"
                   f" vs smtp-source {cpu['smtp-source']:.1f} us = {r:.2f}x "
                   f"(target <= 0.5x): {verdict(r <= 0.5)}")
    return out


def render_tables(results, servers, cpu, repeats):
    parts = []
    for name, cells in results.items():
        rows = IDLE_ROWS if name.startswith("idle") else LOAD_ROWS
        parts.append(table(name, cells, servers, rows))
    if cpu:
        parts.append(
            "### client CPU: smtpsend vs smtp-source (1 KiB, 10 connections x "
            "100 messages, against one smtp-sink)\n\n"
            "| client | CPU per message (us) |\n|---|---|\n"
            f"| smtpsend | {cpu['smtpsend']:.1f} |\n"
            f"| smtp-source | {cpu['smtp-source']:.1f} |\n")
    targets = target_lines(results, servers, cpu)
    if targets:
        parts.append("### targets\n\n" + "\n".join(targets) + "\n")
    return f"(medians of {repeats} interleaved runs)\n\n" + "\n".join(parts)


def plot(results, servers, png):
    """Messages per server CPU-second by scenario, one bar per server."""
    gnuplot = shutil.which("gnuplot")
    names = [n for n in results if not n.startswith("idle")]
    if not gnuplot or not names:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data.txt")
        with open(data, "w") as f:
            for n in names:
                vals = [median(results[n].get(s, []), "msgs_per_server_cpu_s")
                        if results[n].get(s) else 0 for s in servers]
                f.write(f'"{n}" ' + " ".join(f"{v:.1f}" for v in vals) + "\n")
        cols = " , ".join(
            f"'{data}' using {i + 2}:xtic(1) title '{s}'"
            for i, s in enumerate(servers))
        script = f"""
set terminal pngcairo size 1000,520 font ',10'
set output '{png}'
set title 'Messages per server CPU-second (higher is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set grid ytics
set xtics rotate by -30
set key top right
plot {cols}
"""
        r = subprocess.run([gnuplot], input=script.encode(),
                           capture_output=True)
        return r.returncode == 0 and os.path.exists(png)


def write_markdown(path, info, command, tables, png_name, results, servers,
                   cpu, scenario_list):
    scenario_lines = "\n".join(
        f"- {name}: `smtpsend -n {n} {' '.join(args)}`"
        for name, args, n in scenario_list)
    text = f"""# Benchmarks

Generated by `{command}` on {info['date']}. Do not edit by hand: rerun the
bench, which rewrites this page and `{png_name or 'benchmarks.png'}`.

## Machine

- CPUs: {info['nproc']} x {info['model']}
- kernel: {info['kernel']}
- client, servers and everything else share these CPUs over loopback, so
  absolute rates are lower bounds; the per-CPU-second figures and the
  ratios are the steady ones.

## Method

For every scenario and every repetition, each server is started fresh on a
free loopback port (smtp-sink as `smtp-sink -u nobody 127.0.0.1:PORT 4096`;
spamsink with its tarpit off and the per-IP cap raised: a pure sink), the
order of the servers alternates between repetitions, and `smtpsend
--json` drives it.

A third column, `floor`, is `bench/floor_sink.cc`: not a mail server but a
yardstick, the least CPU any sink can spend per message on this kernel. It
finds line ends and answers with canned replies, with one thread, one
epoll set, sockets registered once and never modified, and one recv and
one send per round trip: no limits, timeouts, records, TLS or protocol
checks. On loopback most of every server's CPU is the kernel's TCP work
(our send also runs the client's receive path), which no server can
avoid; the floor shows how much of smtp-sink's cost is avoidable at all,
and so which ratio targets any real sink can reach here. Server CPU is the time on CPU of all the server's
threads before and after the run (`/proc/<pid>/task/*/schedstat`, in
nanoseconds; `utime+stime` of `/proc/<pid>/stat`, in 10 ms ticks, when
they disagree); RSS is `VmRSS` from `/proc/<pid>/status`. smtpsend's own
CPU is its rusage as a reaped child. Messages per
server CPU-second = accepted messages / server CPU seconds. The idle
scenario opens N sessions from distinct addresses in 127.64.0.0/16 that say
EHLO and then wait; RSS growth is divided by the connections the server
actually accepted and held (its open sockets in `/proc/<pid>/fd`, minus
those open before the run; connections left in the listen queue do not
count). smtp-sink accepts no more than 256 connections at once on this
build; the rest of its idle sessions wait in the listen queue until
smtpsend's phase timeout. Scenario names read
`<body size> <connections>x<messages per connection>`. Latencies come from
smtpsend: end-of-data = last body byte written to final reply; session =
connect to close.

## Scenarios

{scenario_lines}

The client comparison runs, against one smtp-sink, `smtpsend -s 10 -m 100
-n 1000 -b 1024` and `smtp-source -s 10 -m 1000 -d -l 1024` (5 times each
per repetition, alternating which goes first) and divides each client's
rusage CPU by the messages sent.

## Results

{tables}
"""
    if png_name:
        text += f"\n![messages per server CPU-second]({png_name})\n"
    text += appendices(os.path.dirname(path))
    with open(path, "w") as f:
        f.write(text)


def appendices(docs_dir):
    """The other benchmarks' sections (docs/BENCHMARKS-*.md: tarpit, ledger,
    appliance), each written by its own program, appended in name order so
    that docs/BENCHMARKS.md holds every figure."""
    out = ""
    for name in sorted(os.listdir(docs_dir)):
        if name.startswith("BENCHMARKS-") and name.endswith(".md"):
            with open(os.path.join(docs_dir, name)) as f:
                out += "\n" + f.read().rstrip() + "\n"
    return out
