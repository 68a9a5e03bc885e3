"""Benchmark of analysis windows: does ``--samples 5 --interval 1s`` cost about its 4 intervals, not 5 runs?

One run, one machine, ratios only (never a timed assertion in tests)::

    .venv/bin/python bench/window_bench.py                   # N=300 targets, 100 ms answers, 5 samples 1 s apart
    .venv/bin/python bench/window_bench.py --n 100 --samples 3 --interval 2

With the engine benchmark's local delay server and environment of N ``http:`` targets
(:mod:`bench.engine_bench`), it measures the wall time of (each in a fresh process, after a warm-up):

  a. the single run: ``pytest -m smoke … <HTTP health check>`` (N checks, one snapshot);
  w. the same with ``--samples S --interval I`` (every check judged on S samples);
  x. the window's floor: (a) plus the (S-1) intervals it must wait, an ideal window;
  y. the naive cost: S single runs one after another, plus the same intervals.

and prints them side by side with the ratios (w)/(x) (target about 1: the window costs its
intervals) and (w)/(y) (what taking the samples in one process saves), and the cost of one more
sample beyond its interval: ((w) - (x)) / (S-1).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_bench import HEALTH_CHECK, Measure, free_port, measure, start_server, suite_argv, write_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="targets (default 300)")
    parser.add_argument("--delay-ms", type=float, default=100, help="server answer delay (default 100)")
    parser.add_argument("--samples", type=int, default=5, help="samples of the window (default 5)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples (default 1)")
    args = parser.parse_args()
    if args.samples < 2 or args.interval <= 0:
        parser.error("--samples must be at least 2 and --interval above 0")

    port = free_port()
    server = start_server(port, args.delay_ms)
    results: dict[str, Measure] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="opsverify-window-bench-") as tmp_name:
            tmp = Path(tmp_name)
            env = write_env(tmp, "bench", port, args.n)
            measure("warm-up", suite_argv(env, tmp / "warm", select=HEALTH_CHECK))
            results["a"] = measure("a. single run", suite_argv(env, tmp / "a", select=HEALTH_CHECK))
            window = ["--samples", str(args.samples), "--interval", f"{args.interval:g}s"]
            results["w"] = measure(f"w. --samples {args.samples} --interval {args.interval:g}s",
                                   suite_argv(env, tmp / "w", *window, select=HEALTH_CHECK))
    finally:
        server.terminate()

    a, w = results["a"].wall_s, results["w"].wall_s
    waits = (args.samples - 1) * args.interval
    floor, naive = a + waits, args.samples * a + waits
    print(f"\nopsverify window benchmark — N={args.n} targets, {args.samples} samples {args.interval:g} s apart, "
          f"server delay {args.delay_ms:g} ms, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n")
    print(f"{'run':<44} {'wall s':>8} {'exit':>5}  last line")
    for m in results.values():
        print(f"{m.name:<44} {m.wall_s:>8.2f} {m.code:>5}  {m.note}")
    print(f"{'x. floor: (a) + ' + str(args.samples - 1) + ' intervals':<44} {floor:>8.2f}")
    print(f"{'y. naive: ' + str(args.samples) + ' x (a) + the intervals':<44} {naive:>8.2f}")
    print("\nratios (target in brackets):")
    print(f"  (w)/(x)                   = {w / floor:6.2f}   [about 1: the window costs its intervals]")
    print(f"  (w)/(y)                   = {w / naive:6.2f}   [< 1: samples taken in one process]")
    print(f"  each sample past its wait = {(w - floor) / (args.samples - 1):6.2f} s  [well under (a) = {a:.2f} s]")
    if results["w"].code not in (0, 1):
        print(f"\nthe window run exited {results['w'].code}: its figures are not a window's", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
