#!/usr/bin/python3
"""Replays the differential corpus against a real daemon and spamsink.

  run.py postfix [--filter SUBSTR] [--show] [--threads N] [--every N]

The sendmail persona's real daemon must run in a network and UTS
namespace of its own (realmta.Sendmail):
  unshare -n -u sh -c 'ip link set lo up && hostname mx.test.example &&
    python3 run.py sendmail --threads 16'

Prints the counts (dialogues, replies compared, equal, allowlisted,
different) and, with --show, every difference. Exit status 1 if any
difference is not allowlisted.
"""
import argparse
import base64
import difflib
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))

import corpus  # noqa: E402
import dialogue  # noqa: E402
import realmta  # noqa: E402
from allowlist import ALLOWLIST  # noqa: E402

IDLE_TIMEOUT = 10  # seconds, both servers (the corpus waits 12 once)

# Dialogues whose reply timing is compared too: each reply must arrive as
# long after the connection as the real daemon's does, within LATENCY_SLACK
# seconds (Postfix's error sleep: 1 s before each reply line past 10
# errors, each flushed at once).
TIMED = {"postfix": ("error-limit", "error-sleep-pipelined")}
LATENCY_SLACK = 0.6

# The client's address per persona. Sendmail names its client by reverse
# DNS ("Hello localhost [127.0.0.1]"); spamsink does no reverse lookup and
# always answers as Sendmail answers a client without a PTR record. From
# 127.0.0.2, which no hosts file names, the real Sendmail finds no name
# either, so the texts are compared for the case spamsink plays.
SOURCE = {"sendmail": "127.0.0.2"}


def _sasl_challenge(reply):
    """Sendmail's AUTH challenges (Cyrus SASL) hold random numbers and a
    clock: their shape only."""
    m = re.fullmatch(r"334 ([A-Za-z0-9+/=]{8,})", reply)
    if not m:
        return reply
    try:
        text = base64.b64decode(m.group(1)).decode()
    except ValueError:
        return reply
    text = re.sub(r"^<\d+\.\d+@", "<RANDOM.CLOCK@", text)
    text = re.sub(r'^nonce="[A-Za-z0-9+/=]{44}"', 'nonce="<NONCE>"', text)
    return "334 <base64> " + text


def normalise(persona, reply):
    """Only what legitimately differs between two instances: queue ids."""
    if persona == "postfix":
        reply = re.sub(r"queued as [0-9A-F]{10,12}\b", "queued as <QID>",
                       reply)
    elif persona == "exim":
        reply = re.sub(r"id=[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}\b",
                       "id=<QID>", reply)
        reply = re.sub(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} "
                       r"\d\d:\d\d:\d\d [+-]\d{4}", "<DATE>", reply)
    elif persona == "sendmail":
        reply = re.sub(r"\b[0-9A-Za-z]{8}\d{6}\b", "<QID>", reply)
        reply = re.sub(r"[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} "
                       r"\d\d:\d\d:\d\d( [+-]\d{4}| GMT)( \([A-Z]+\))?",
                       "<DATE>", reply)
        reply = _sasl_challenge(reply)
    return reply


def allowlisted(persona, name, real, sink):
    for entry in ALLOWLIST.get(persona, []):
        if re.search(entry["dialogue"], name) and re.search(
                entry["real"], real) and re.search(entry["sink"], sink):
            return entry
    return None


def compare(persona, dlg, real, sink):
    """Returns (compared, equal, allowlisted, [differences])."""
    real = [normalise(persona, r) for r in real]
    sink = [normalise(persona, r) for r in sink]
    n = max(len(real), len(sink))
    eq = allowed = 0
    diffs = []
    for i in range(n):
        a = real[i] if i < len(real) else "<missing>"
        b = sink[i] if i < len(sink) else "<missing>"
        if a == b:
            eq += 1
        elif allowlisted(persona, dlg.name, a, b):
            allowed += 1
        else:
            diffs.append((i, a, b))
    return n, eq, allowed, diffs


def compare_timing(persona, dlg, real, sink):
    """The timing differences of a TIMED dialogue: [(i, real, sink)]."""
    if dlg.name not in TIMED.get(persona, ()):
        return []
    diffs = []
    for i, (a, b) in enumerate(zip(real.times, sink.times)):
        if abs(a - b) > LATENCY_SLACK:
            diffs.append((i, f"{real[i]} <after {a:.1f} s>",
                          f"{sink[i]} <after {b:.1f} s>"))
    return diffs


def start(persona):
    if persona == "postfix":
        real = realmta.Postfix(
            extra_main_cf=f"smtpd_timeout = {IDLE_TIMEOUT}s\n")
    elif persona == "exim":
        real = realmta.Exim(timeout=IDLE_TIMEOUT)
    elif persona == "sendmail":
        real = realmta.Sendmail(timeout=IDLE_TIMEOUT)
    else:
        raise SystemExit("no real daemon for persona " + persona)
    import harness
    # The private Sendmail has no certificate (Debian's sendmail.mc names
    # none until sendmailconfig makes one): no STARTTLS on either side.
    tls = ["--smtp-starttls", "false"] if persona == "sendmail" else []
    sink = harness.Sink("--persona", persona, "--tarpit-enabled", "false",
                        "--hostname", realmta.HOSTNAME,
                        "--smtp-idle-timeout", str(IDLE_TIMEOUT), *tls)
    return real, sink


def run(persona, flt=None, show=False, out=sys.stdout, threads=4, every=1):
    """every: only every n-th dialogue of the corpus (a sample)."""
    dialogues = [d for d in corpus.all_dialogues()
                 if not flt or flt in d.name][::every]
    real, sink = start(persona)
    totals = dict(dialogues=len(dialogues), replies=0, equal=0,
                  allowlisted=0, different=0, timed=0, late_or_early=0)
    failed = []
    try:
        def one(d):
            src = SOURCE.get(persona)
            return (d, dialogue.play(real.port, d, src),
                    dialogue.play(sink.port, d, src))

        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(one, dialogues))
        for d, a, b in results:
            n, eq, allowed, diffs = compare(persona, d, a, b)
            totals["replies"] += n
            totals["equal"] += eq
            totals["allowlisted"] += allowed
            totals["different"] += len(diffs)
            timing = compare_timing(persona, d, a, b)
            if d.name in TIMED.get(persona, ()):
                totals["timed"] += min(len(a.times), len(b.times))
            totals["late_or_early"] += len(timing)
            diffs += timing
            if diffs:
                failed.append((d, a, b, diffs))
    finally:
        real.close()
        sink.close()
    if show:
        for d, a, b, diffs in failed:
            a = [normalise(persona, r) for r in a]
            b = [normalise(persona, r) for r in b]
            print(f"--- {d.name}", file=out)
            for line in difflib.unified_diff(a, b, "real", "spamsink",
                                             lineterm="", n=1):
                print("  " + line.replace("\n", "\n  | "), file=out)
            for i, ra, rb in diffs:
                if ra.endswith(" s>"):  # a timing difference
                    print(f"  reply {i}: real {ra!r}, spamsink {rb!r}",
                          file=out)
    print(f"{persona}: " + ", ".join(f"{k} {v}" for k, v in totals.items()),
          file=out)
    return totals, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("persona")
    ap.add_argument("--filter")
    ap.add_argument("--show", action="store_true")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--every", type=int, default=1,
                    help="only every n-th dialogue (a sample)")
    a = ap.parse_args()
    t0 = time.monotonic()
    totals, failed = run(a.persona, a.filter, a.show, threads=a.threads,
                         every=a.every)
    print(f"({time.monotonic() - t0:.1f} s)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
