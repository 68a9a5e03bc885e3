"""Benchmark of the probe engine: does a suite of N network checks cost about its slowest probe?

One run, one machine, ratios only (never a timed assertion in tests)::

    .venv/bin/python bench/engine_bench.py            # N=300 targets, 100 ms answers, RSS at N=1000
    .venv/bin/python bench/engine_bench.py --n 100 --delay-ms 50 --rss-n 0
    .venv/bin/python bench/engine_bench.py --busy-core   # while another process keeps a core busy
    .venv/bin/python bench/engine_bench.py --repeat 3    # a, c, c0, d, f: median of 3 alternating runs

It starts a local HTTP server that answers every request after ``--delay-ms`` and serves many
connections, writes an environment with N ``http:`` targets on it, and measures wall time and peak RSS
of (each in a fresh process):

  a. the suite: ``pytest -m smoke --env-file=… <HTTP health check>`` with the default reports (one
     check per target: N health checks; ``--all-http-checks`` runs the 3 HTTP checks of each target);
  b. the same with ``--probe-concurrency 1`` (the sequential baseline);
  c. the pytest floor: as many parametrized no-op tests, same plugins and report writers;
  d. the raw limit: one asyncio process doing the same N requests with httpx, concurrently;
  e. the suite under ``-n 2`` (pytest-xdist);
  f. the suite with one extra target that never answers (timeout 1 s);
  g. the suite at N = ``--rss-n`` targets, for peak RSS.

Then it prints the table and the ratios (a)/(c+d), (b)/(a), per-check overhead (a−c−d)/checks, and
the cost of the stalled target, with the targets the engine must reach.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
# the interpreter of the measured runs (--python): by default this one, the project's development
# virtualenv, which also holds the self-tests' tools (kmock, Hypothesis) that a user's install lacks
RUN = {"python": PY}
PYCACHE = Path(tempfile.gettempdir()) / "opsverify-bench-pycache"
PLUGINS = ["-p", "opsverify.plugin", "-p", "fixtures.http", "-p", "fixtures.tls", "-p", "fixtures.network",
           # the self-tests' fuzzing library is in the test extra, not in a user's install: its pytest
           # plugin imports all of hypothesis (~1.2 s here) at every start and would be billed to the floor
           "-p", "no:hypothesispytest"]


@dataclass
class Measure:
    name: str
    wall_s: float
    rss_mb: float
    code: int
    note: str = ""


def median_of(measured: list[Measure]) -> Measure:
    """The run of median wall time (of an odd count; the lower middle of an even one), its spread noted."""
    ordered = sorted(measured, key=lambda m: m.wall_s)
    middle = ordered[(len(ordered) - 1) // 2]
    if len(ordered) > 1:
        middle.note = f"median of {len(ordered)}, {ordered[0].wall_s:.2f}-{ordered[-1].wall_s:.2f} s; {middle.note}"[:70]
    return middle


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(name: str, argv: list[str], cwd: Path = ROOT, note: str = "") -> Measure:
    """Run ``argv`` once; wall time and the child's peak RSS (from wait4)."""
    # bytecode (and pytest's rewritten-assert) caches as a user has them, kept outside the tree; the
    # warm-up run fills them, so no measured run pays for compiling every module
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(PYCACHE)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTEST_ADDOPTS", None)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    tail = output.decode(errors="replace").strip().splitlines()[-1:] or [""]
    return Measure(name, wall, usage.ru_maxrss / 1024, code, note or tail[0][:70])


def start_server(port: int, delay_ms: float) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [PY, "-m", "tests.recorder", "--port", str(port), "--delay-ms", str(delay_ms)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("bench: the delay server did not start")


def write_env(directory: Path, name: str, port: int, n: int, stalled_port: int | None = None) -> Path:
    lines = [f"name: {name}", "tier: dev", "defaults: {timeout_s: 10}", "http:"]
    for i in range(n):
        lines.append(f"  - {{name: t{i:04d}, url: 'http://127.0.0.1:{port}/t{i}'}}")
    if stalled_port:
        lines.append(f"  - {{name: stalled, url: 'http://127.0.0.1:{stalled_port}/', timeout_s: 1}}")
    path = directory / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


# One health check per target by default (300 health checks at the default N); ``--all-http-checks``
# runs every HTTP check a target configures (3 per target here).
HEALTH_CHECK = "checks/test_http.py::test_endpoint_returns_expected_status"
ALL_HTTP_CHECKS = "checks/test_http.py"


def suite_argv(env: Path, reports: Path, *extra: str, select: str = HEALTH_CHECK) -> list[str]:
    return [RUN["python"], "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "smoke", f"--env-file={env}",
            f"--reports-dir={reports}", select, *extra]


def count_checks(reports: Path) -> int:
    summary = json.loads((reports / "summary.json").read_text())
    return int(summary["totals"]["passed"]) + int(summary["totals"]["failed"]) + int(summary["totals"]["error"])


def floor_argv(directory: Path, checks: int, reports: Path) -> list[str]:
    test = directory / "test_floor.py"
    test.write_text(textwrap.dedent(f"""
        import pytest

        @pytest.mark.parametrize("i", range({checks}))
        def test_noop(i):
            pass
    """))
    return [RUN["python"], "-m", "pytest", "-p", "no:cacheprovider", "-q", *PLUGINS, f"--rootdir={ROOT}",
            f"-c={ROOT / 'pyproject.toml'}", f"--junitxml={reports / 'junit.xml'}",
            f"--alluredir={reports / 'allure'}", str(test)]


def bare_floor_argv(directory: Path, checks: int, reports: Path) -> list[str]:
    """The floor without opsverify: pytest and the other chosen plugins (xdist, allure, testinfra) only."""
    floor_argv(directory, checks, reports)  # writes the same no-op test file
    # -c=/dev/null drops pyproject.toml's addopts, so the self-test plugins they block are blocked here
    return [RUN["python"], "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "no:opsverify.plugin", "-p", "no:hypothesispytest",
            "-p", "no:kmock", "-p", "no:asyncio",
            f"--rootdir={directory}", "-c=/dev/null", f"--junitxml={reports / 'junit.xml'}",
            f"--alluredir={reports / 'allure'}", str(directory / "test_floor.py")]


def raw_argv(port: int, n: int) -> list[str]:
    # a client per request: httpcore's pool work grows with the square of the requests in flight
    # (opsverify.net.http shares clients of bounded load instead), and the raw limit should be the
    # fastest httpx can do
    code = textwrap.dedent(f"""
        import asyncio, httpx
        tls = httpx.create_ssl_context()  # built once and shared, as the engine does
        async def get(i):
            async with httpx.AsyncClient(trust_env=False, timeout=30, verify=tls) as client:
                return await client.get(f"http://127.0.0.1:{port}/t{{i}}")
        async def main():
            responses = await asyncio.gather(*(get(i) for i in range({n})))
            assert all(r.status_code == 200 for r in responses)
        asyncio.run(main())
    """)
    return [RUN["python"], "-c", code]


def blackhole(port: int) -> subprocess.Popen[bytes]:
    code = textwrap.dedent(f"""
        import socket, time
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", {port})); s.listen(64)
        held = []
        s.settimeout(120)
        end = time.monotonic() + 600
        while time.monotonic() < end:
            try:
                held.append(s.accept()[0])
            except OSError:
                break
    """)
    return subprocess.Popen([PY, "-c", code], start_new_session=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="targets (default 300)")
    parser.add_argument("--delay-ms", type=float, default=100, help="server answer delay (default 100)")
    parser.add_argument("--rss-n", type=int, default=1000, help="targets for the RSS run (0: skip)")
    parser.add_argument("--all-http-checks", action="store_true",
                        help="run every HTTP check of each target (3 per target) instead of the one health check")
    parser.add_argument("--busy-core", action="store_true",
                        help="keep one core busy with another process during every measurement (a shared CI runner)")
    parser.add_argument("--python", default=PY,
                        help="interpreter of the measured runs, e.g. of a virtualenv holding opsverify as a user "
                             "installs it (pip install -e '.[all]', no self-test tools; default: this one)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the short measurements (a, c, c0, d, f) this many times, alternating, and "
                             "report each one's median: their differences are often within start-up noise")
    args = parser.parse_args()
    RUN["python"] = args.python

    port, hole_port = free_port(), free_port()
    server = start_server(port, args.delay_ms)
    hole = blackhole(hole_port)
    select = ALL_HTTP_CHECKS if args.all_http_checks else HEALTH_CHECK
    results: dict[str, Measure] = {}
    hog = subprocess.Popen([PY, "-c", "while True: pass"]) if args.busy_core else None
    try:
        with tempfile.TemporaryDirectory(prefix="opsverify-bench-") as tmp_name:
            tmp = Path(tmp_name)
            env = write_env(tmp, "bench", port, args.n)
            # warm-up: imports and bytecode caches, so no measured run pays for them alone
            measure("warm-up", suite_argv(env, tmp / "warm", select=select))
            checks = count_checks(tmp / "warm")
            stalled_env = write_env(tmp, "bench-stalled", port, args.n, stalled_port=hole_port)
            short = {
                "a": ("a. suite", suite_argv(env, tmp / "a", select=select)),
                "c": ("c. pytest floor (no-op tests)", floor_argv(tmp, checks, tmp / "c")),
                "c0": ("c0. bare pytest floor (no opsverify)", bare_floor_argv(tmp, checks, tmp / "c0")),
                "d": ("d. raw asyncio+httpx", raw_argv(port, args.n)),
                "f": ("f. suite + 1 stalled target (1 s)", suite_argv(stalled_env, tmp / "f", select=select)),
            }
            runs: dict[str, list[Measure]] = {key: [] for key in short}
            for _ in range(max(args.repeat, 1)):
                for key, (name, argv) in short.items():
                    runs[key].append(measure(name, argv))
            results.update({key: median_of(measured) for key, measured in runs.items()})
            results["b"] = measure("b. suite, --probe-concurrency 1", suite_argv(env, tmp / "b", "--probe-concurrency", "1", select=select))
            results["e"] = measure("e. suite, -n 2", suite_argv(env, tmp / "e", "-n", "2", select=select))
            if args.rss_n:
                big = write_env(tmp, "bench-big", port, args.rss_n)
                results["g"] = measure(f"g. suite at N={args.rss_n}", suite_argv(big, tmp / "g", select=select))
    finally:
        server.terminate()
        hole.terminate()
        if hog is not None:
            hog.kill()

    cpu = os.cpu_count()
    interpreter = "this interpreter" if args.python == PY else args.python
    print(f"\nopsverify engine benchmark — N={args.n} targets x {checks // max(args.n, 1)} checks = {checks} checks, "
          f"server delay {args.delay_ms:g} ms, {cpu} CPUs, Python {sys.version.split()[0]}"
          f"{', one core kept busy by another process' if args.busy_core else ''}; measured runs by {interpreter}\n")
    print(f"{'run':<40} {'wall s':>8} {'peak RSS MB':>12} {'exit':>5}  last line")
    for m in sorted(results.values(), key=lambda m: m.name):
        print(f"{m.name:<40} {m.wall_s:>8.2f} {m.rss_mb:>12.0f} {m.code:>5}  {m.note}")
    a, b, c, d = (results[k].wall_s for k in "abcd")
    overhead_ms = (a - c - d) / checks * 1000
    print("\nratios (target in brackets):")
    print(f"  (a)/(c+d)              = {a / (c + d):6.2f}   [<= 1.5]")
    print(f"  (b)/(a)                = {b / a:6.2f}   [>= 20 at N=300, 100 ms]")
    c0 = results["c0"].wall_s
    ceiling = (c0 + args.n * args.delay_ms / 1000) / c0
    print(f"  (b)/(a) ceiling        = {ceiling:6.2f}   (what it could be if the suite cost no more than bare pytest's "
          f"own start, {c0:.2f} s, plus the slowest answer)")
    print(f"  opsverify's floor cost = {c - c0:6.2f} s  (c - c0: importing the plugin and its reports for {checks} items)")
    print(f"  per-check overhead     = {overhead_ms:6.2f} ms [<= 2 ms]  ((a-c-d)/{checks})")
    print(f"  stalled target adds    = {results['f'].wall_s - a:6.2f} s  [<= timeout 1 s + 0.5 s]")
    print(f"  -n 2 vs single process = {results['e'].wall_s / a:6.2f}x")
    if "g" in results:
        print(f"  peak RSS at N={args.rss_n:<5}   = {results['g'].rss_mb:6.0f} MB [<= 250 MB]")


if __name__ == "__main__":
    main()
