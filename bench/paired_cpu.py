#!/usr/bin/env python3
"""Paired server-CPU runs: two spamsink binaries (or one binary with and
without an environment variable) against the same load, alternated back to
back, each run on a fresh server. Prints the server's CPU ticks
(utime+stime from /proc, 1/100 s) and messages per server CPU-second per
run, and the sums of each side. run.py's loads are a few clock ticks at
2,000 messages; these are meant to be long (-n 20000), so the tick and
the neighbours' noise matter less. A benchmark program, not a test.

  python3 bench/paired_cpu.py --a /work/wt-int/build/spamsink \\
      --b build/spamsink --load "100KiB 10x100 bulk" -n 20000 --pairs 3
"""
import argparse
import os
import sys
import tempfile
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (Server, run_load, scenarios)


def one(binary, env, load_args, n, tmp, build, spamsink_args):
    a = types.SimpleNamespace(build=build, spamsink=binary,
                              spamsink_args=spamsink_args)
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        # "floor": bench/floor_sink from --build (the syscall floor)
        kind = "floor" if binary.endswith("/floor") else "spamsink"
        server = run.Server(kind, a, tmp)
        r = run.run_load(server, os.path.join(build, "smtpsend"), load_args, n)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return r


def main():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True,
                    help="spamsink binary A, or \"floor\" for floor_sink")
    ap.add_argument("--b", default=None, help="spamsink binary B (default A)")
    ap.add_argument("--env-a", default="", help="VAR=VALUE for A's runs")
    ap.add_argument("--env-b", default="", help="VAR=VALUE for B's runs")
    ap.add_argument("--args-b", default="",
                    help="extra spamsink flags for B's runs only "
                         "(e.g. --server-threads 1)")
    ap.add_argument("--load", action="append", required=True,
                    help="a run.py scenario name (repeatable)")
    ap.add_argument("-n", type=int, default=20000, help="messages per run")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--build", default=os.path.join(here, "build"),
                    help="where smtpsend is")
    ap.add_argument("--spamsink-args", default=(
        "--tarpit-enabled false --server-max-connections-per-ip 100000 "
        "--server-max-connections 100000 --api-enabled false "
        "--log-sessions false"))
    args = ap.parse_args()
    args.a = os.path.abspath(args.a)  # (the server runs in a temp dir)
    b = os.path.abspath(args.b or args.a)
    args.build = os.path.abspath(args.build)

    def env(s):
        return dict([s.split("=", 1)]) if s else {}

    loads = {name: a for name, a, _ in run.scenarios(False)}
    tmp = tempfile.mkdtemp(prefix="spamsink-paired-")
    for load in args.load:
        if load not in loads:
            sys.exit(f"no scenario {load!r}; see bench/run.py")
        sums = {"A": [0.0, 0], "B": [0.0, 0]}
        for i in range(args.pairs):
            order = [("A", args.a, env(args.env_a), ""),
                     ("B", b, env(args.env_b), args.args_b)]
            if i % 2:
                order.reverse()  # neither side always goes first
            for side, binary, e, extra in order:
                r = one(binary, e, loads[load], args.n, tmp, args.build,
                        (args.spamsink_args + " " + extra).strip())
                ticks = round(r["server_cpu_s"] * 100)
                sums[side][0] += r["server_cpu_s"]
                sums[side][1] += r["accepted"]
                print(f"{load} pair {i} {side}: {ticks} ticks, "
                      f"{r['msgs_per_server_cpu_s']:.0f} msgs/CPU-s, "
                      f"failed {r['failed']}", flush=True)
        for side in ("A", "B"):
            cpu, msgs = sums[side]
            print(f"{load} {side} total: {round(cpu * 100)} ticks, "
                  f"{msgs / cpu if cpu else 0:.0f} msgs/CPU-s", flush=True)
        if sums["A"][0]:
            print(f"{load} B/A CPU: {sums['B'][0] / sums['A'][0]:.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
