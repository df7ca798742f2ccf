#!/usr/bin/env python3
"""Crash consistency (issue 13, item 7): kill -9 under load, then count.

    bench/crash_bench.py [--kills 10] [--flush 1.0] [--senders 16]
                         [--build build] [--seed S]

Runs build/spamsink (SQLite ledger in a temporary directory, tarpit off) on
loopback and, per round, loads it with build/smtpsend (one message per
session, sources spread over 127.3.0.0/16), kills the server with SIGKILL
at a random moment (1.5 to 6 s into the load), stops smtpsend (SIGINT: it
prints its report, with the messages it was answered 250), then opens the
database as the next start would (WAL recovery) and checks:
  - PRAGMA integrity_check is "ok";
  - the totals row equals the sum over the source records;
  - lost = messages before + messages told 250 - messages in the ledger.
The writer cuts its batches at the last cut + interval - the last commit
time (ledger/cadence.h), so a kill loses what came since the cut of the
last batch that committed: about one interval while commits take at most
half of it, at most (interval + longest commit time) x the 250 rate, plus
the sessions in flight (a session's record is queued when it closes).
(Before that change the writer waited an interval after each commit ended:
interval + 2 x commit time.)
The server logs each commit's duration (--log-level debug, ledger_batch);
each round prints the loss in flush intervals' worth (lost/I) and that bound.
lost < 0 would mean records counted twice.
The same database is reused by every round (the next start opens what the
kill left). Prints one line per kill (the last column but one: I when the loss is
within one interval's worth, I+C within the bound, "more" beyond it) and a
summary; exit 1 when an integrity check fails, the totals disagree, a count
goes negative, or (with --max-intervals X) a round loses more than X
intervals' worth.
A program that prints figures, not a test. Loopback only; every process it
starts is stopped by its pid.
"""

import argparse
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_server(build, db, log_path, flush):
    log = open(log_path, "a")
    cmd = [os.path.join(build, "spamsink"),
           "--listen", "127.0.0.1:0", "--db", db,
           "--ledger-flush-interval", str(flush), "--log-sessions", "false",
           "--tarpit-enabled", "false", "--hostname", "mx.crash.test",
           "--log-level", "debug"]  # debug: one ledger_batch line a commit
    start = os.path.getsize(log_path) if os.path.exists(log_path) else 0
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with open(log_path, errors="replace") as f:
            f.seek(start)
            m = re.findall(r"event=listening address=127\.0\.0\.1:(\d+)",
                           f.read())
        if m:
            return proc, int(m[-1]), start
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    sys.exit("spamsink did not start; log: " + open(log_path).read()[-2000:])


def commit_seconds(log_path, start):
    """The durations of the commits logged since offset start."""
    with open(log_path, errors="replace") as f:
        f.seek(start)
        return [float(x) for x in re.findall(
            r"event=ledger_batch .*?seconds=([0-9.]+)", f.read())]


def ledger_state(db):
    """(integrity_check, sum of messages, totals.messages, sources)."""
    if not os.path.exists(db):
        return "ok", 0, 0, 0
    c = sqlite3.connect(db, timeout=30)
    try:
        check = "; ".join(r[0] for r in c.execute("PRAGMA integrity_check"))
        s, n = c.execute(
            "SELECT coalesce(sum(messages), 0), count(*) FROM sources"
        ).fetchone()
        t = c.execute("SELECT messages FROM totals WHERE id = 1").fetchone()
        return check, s, (t[0] if t else 0), n
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--flush", type=float, default=1.0,
                    help="ledger.flush_interval of the server (s)")
    ap.add_argument("--senders", type=int, default=16)
    ap.add_argument("--build", default=os.environ.get(
        "SPAMSINK_BUILD_DIR", os.path.join(ROOT, "build")))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--max-intervals", type=float, default=None,
                    help="also fail a round losing more than this many "
                    "flush intervals' worth (+ the sessions in flight)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = tempfile.mkdtemp(prefix="spamsink-crash-")
    db = os.path.join(tmp, "crash.db")
    log_path = os.path.join(tmp, "spamsink.log")
    print("crash_bench: ledger %s, flush_interval %.2f s, %d senders, "
          "%d kills" % (db, args.flush, args.senders, args.kills))
    print("%4s %7s %9s %9s %9s %8s %7s %6s %6s %9s %5s  %s" % (
        "kill", "at s", "told 250", "ledger+", "lost", "250/s", "1 flush",
        "lost/I", "max C", "bound", "", "integrity"))
    failures = 0
    rows = []
    for k in range(1, args.kills + 1):
        check, before, _, _ = ledger_state(db)
        proc, port, log_start = start_server(args.build, db, log_path, args.flush)
        out = open(os.path.join(tmp, "smtpsend-%d.json" % k), "w+")
        sender = subprocess.Popen(
            [os.path.join(args.build, "smtpsend"), "-t", "60",
             "-s", str(args.senders), "-m", "1", "--source-range",
             "127.3.0.0/16", "--phase-timeout", "5", "--json",
             "--no-progress", "--ignore-failures", "-p", str(port),
             "127.0.0.1"], stdout=out, stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        at = rng.uniform(1.5, 6.0)
        time.sleep(at)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        load_s = time.monotonic() - t0
        sender.send_signal(signal.SIGINT)
        try:
            sender.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sender.kill()
            sender.wait()
        out.seek(0)
        try:
            report = json.load(out)
        except ValueError:
            sys.exit("smtpsend printed no JSON report (round %d)" % k)
        told = int(report["messages"]["accepted"])
        check, after, totals, sources = ledger_state(db)
        gained = after - before
        lost = told - gained
        rate = told / load_s if load_s > 0 else 0
        commits = commit_seconds(log_path, log_start) or [0.0]
        # A kill loses what came since the cut of the last batch that
        # committed: at most interval + commit time (ledger/cadence.h).
        bound = rate * (args.flush + max(commits)) + args.senders
        within = "I" if lost <= rate * args.flush + args.senders else (
            "I+C" if lost <= bound else "more")
        ok = check == "ok" and totals == after and lost >= 0
        if args.max_intervals is not None:
            ok = ok and lost <= rate * args.flush * args.max_intervals + \
                args.senders
        if not ok:
            failures += 1
        rows.append((lost, rate * args.flush, within))
        print("%4d %7.2f %9d %9d %9d %8.0f %7.0f %6.2f %6.2f %9.0f %5s  %s%s" % (
            k, at, told, gained, lost, rate, rate * args.flush,
            lost / (rate * args.flush) if rate else 0, max(commits), bound,
            within if ok else "FAIL", check,
            "" if totals == after else
            " (totals %d != sum %d)" % (totals, after)))
        sys.stdout.flush()
    _, total, _, sources = ledger_state(db)
    worst = max(r[0] for r in rows)
    worst_share = max((r[0] / r[1]) if r[1] else 0 for r in rows)
    print("crash_bench: %d kills, %d failed; ledger holds %d messages from "
          "%d sources; worst loss %d messages = %.2f flush intervals' worth "
          "(bound: interval + longest commit, + %d sessions in flight)" % (
              args.kills, failures, total, sources, worst, worst_share,
              args.senders))
    print("crash_bench: loss within one flush interval's worth (+ sessions "
          "in flight): %d of %d kills; within interval + the longest "
          "logged commit: %d of %d" % (
              sum(r[2] == "I" for r in rows), len(rows),
              sum(r[2] != "more" for r in rows), len(rows)))
    print("crash_bench: %s" % ("OK" if failures == 0 else "FAILED"))
    if failures == 0:
        subprocess.run(["rm", "-rf", tmp])
    else:
        print("crash_bench: kept %s" % tmp)
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
