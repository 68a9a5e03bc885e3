"""Is the instrument true? One endpoint of known delay among N instant ones, read by three peers.

One run, one machine, side by side (never a timed assertion in tests)::

    .venv/bin/python bench/latency_accuracy.py                  # N = 0, 300, 1000; known delay 50 ms
    .venv/bin/python bench/latency_accuracy.py --busy-core      # the same while a process keeps a core busy

A local HTTP server (``tests/delay_server.py``) answers ``/delay/50/...`` after 50 ms and every other
path at once. For each N, the same N + 1 targets on that one host are read by:

- opsverify: ``pytest -k latency`` over an environment file of the N + 1 targets (what it records
  in ``summary.json``: the median of its trusted samples);
- Prometheus blackbox_exporter (Debian's ``prometheus-blackbox-exporter``, unpacked without root by
  ``bench/install-blackbox.sh``), asked to probe all N + 1 targets at once, as a Prometheus scrape of
  that many targets does (``probe_duration_seconds``);
- curl alongside each of them: the 50 ms endpoint, 5 times one after another (``time_total``).

It prints, per N, each peer's reading of the 50 ms endpoint and its error against the known delay,
and the median and worst reading of the instant ones. opsverify's target: the 50 ms endpoint within
max(5 ms, 10 %) and the instant ones under 25 ms at every N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


@dataclass
class Reading:
    peer: str
    probe_ms: float | None
    instant_ms: list[float] = field(default_factory=list)
    curl_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    note: str = ""


def start(argv: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def curl_alongside(url: str, out: list[float], stop: threading.Event) -> None:
    """Time ``url`` with curl 5 times, one after another, while the peer runs."""
    time.sleep(0.3)
    for _ in range(5):
        if stop.is_set() and out:
            return
        done = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", url],
                              capture_output=True, text=True, timeout=30, check=False)
        if done.returncode == 0:
            out.append(float(done.stdout) * 1000)


def with_curl(url: str, run: Callable[[], Reading]) -> Reading:
    times: list[float] = []
    stop = threading.Event()
    thread = threading.Thread(target=curl_alongside, args=(url, times, stop))
    thread.start()
    reading = run()
    stop.set()
    thread.join()
    reading.curl_ms = times
    return reading


def opsverify(tmp: Path, port: int, n: int) -> Reading:
    lines = ["name: accuracy", "tier: dev", "http:",
             f"  - {{name: probe, url: 'http://127.0.0.1:{port}/delay/50/probe', max_latency_ms: 1000}}"]
    lines += [f"  - {{name: i{i:04d}, url: 'http://127.0.0.1:{port}/fast/{i}', max_latency_ms: 1000}}" for i in range(n)]
    env = tmp / f"accuracy-{n}.yaml"
    env.write_text("\n".join(lines) + "\n")
    reports = tmp / f"reports-{n}"
    argv = [PY, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--env-file={env}", f"--reports-dir={reports}",
            "checks/test_http.py::test_endpoint_answers_within_latency_budget"]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "ov-bench-pyc")})
    wall = time.perf_counter() - started
    summary = json.loads((reports / "summary.json").read_text())
    values = {r["target"]: r["measured"][0]["value"] for r in summary["checks"] if r.get("measured")}
    bad = sum(r["outcome"] in ("failed", "error") for r in summary["checks"])
    return Reading("opsverify", values.get("probe"), [v for k, v in values.items() if k != "probe"], wall_s=wall,
                   note=f"exit {done.returncode}, {bad} failed/error")


async def _blackbox_all(exporter: str, port: int, n: int) -> tuple[float | None, list[float], int]:
    import httpx

    targets = [f"http://127.0.0.1:{port}/delay/50/probe"] + [f"http://127.0.0.1:{port}/fast/{i}" for i in range(n)]
    limits = httpx.Limits(max_connections=len(targets) + 1, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, trust_env=False, limits=limits) as client:

        async def one(target: str) -> float | None:
            answer = await client.get(f"http://{exporter}/probe", params={"target": target, "module": "http_2xx"})
            match = re.search(r"^probe_duration_seconds ([0-9.e+-]+)$", answer.text, re.M)
            ok = re.search(r"^probe_success 1$", answer.text, re.M)
            return float(match.group(1)) * 1000 if match and ok else None

        results = await asyncio.gather(*(one(t) for t in targets))
    failed = sum(r is None for r in results)
    return results[0], [r for r in results[1:] if r is not None], failed


def blackbox(exporter: str, port: int, n: int) -> Reading:
    started = time.perf_counter()
    probe, instant, failed = asyncio.run(_blackbox_all(exporter, port, n))
    return Reading("blackbox_exporter", probe, instant, wall_s=time.perf_counter() - started,
                   note=f"{failed} probes failed")


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="*", default=[0, 300, 1000], help="instant endpoints beside the 50 ms one")
    parser.add_argument("--busy-core", action="store_true", help="keep one core busy with another process meanwhile")
    args = parser.parse_args()
    binary = subprocess.run(["bash", str(ROOT / "bench/install-blackbox.sh")], capture_output=True, text=True,
                            check=True).stdout.strip().splitlines()[-1]
    server, port_text = start([PY, "-m", "tests.delay_server", "--port", "0"])
    port = int(port_text)
    rows: list[tuple[int, list[Reading]]] = []
    hog: subprocess.Popen[bytes] | None = None
    with tempfile.TemporaryDirectory(prefix="opsverify-accuracy-") as tmp_name:
        tmp = Path(tmp_name)
        config = tmp / "blackbox.yml"
        config.write_text("modules:\n  http_2xx:\n    prober: http\n    timeout: 30s\n"
                          "    http:\n      preferred_ip_protocol: ip4\n")
        from socket import socket

        with socket() as s:
            s.bind(("127.0.0.1", 0))
            bb_port = s.getsockname()[1]
        exporter = subprocess.Popen([binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{bb_port}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            hog = subprocess.Popen([PY, "-c", "while True: pass"]) if args.busy_core else None
            time.sleep(1.0)
            slow = f"http://127.0.0.1:{port}/delay/50/curl"
            opsverify(tmp, port, 10)  # warm-up: bytecode caches, as a user has them
            for n in args.n:
                readings = [with_curl(slow, lambda n=n: opsverify(tmp, port, n)),
                            with_curl(slow, lambda n=n: blackbox(f"127.0.0.1:{bb_port}", port, n))]
                rows.append((n, readings))
        finally:
            exporter.terminate()
            server.terminate()
            if hog is not None:
                hog.kill()

    load = "with one core kept busy by another process" if args.busy_core else "otherwise idle"
    print(f"\nlatency accuracy — one endpoint answering after 50 ms among N instant ones on one host, "
          f"{os.cpu_count()} CPUs, {load}\n")
    print(f"{'N':>5}  {'peer':<18} {'50 ms read':>10} {'error':>7}  {'instant median':>14} {'instant worst':>13}"
          f"  {'curl alongside (median)':>23}  {'wall s':>6}  note")
    for n, readings in rows:
        for r in readings:
            error = None if r.probe_ms is None else r.probe_ms - 50
            median = statistics.median(r.instant_ms) if r.instant_ms else None
            worst = max(r.instant_ms) if r.instant_ms else None
            curl = statistics.median(r.curl_ms) if r.curl_ms else None
            print(f"{n:>5}  {r.peer:<18} {fmt(r.probe_ms):>10} {fmt(error):>7}  {fmt(median):>14} {fmt(worst):>13}"
                  f"  {fmt(curl):>23}  {r.wall_s:>6.2f}  {r.note}")
    print("\nopsverify's target: the 50 ms endpoint within max(5 ms, 10 %) of 50 ms, the instant ones under 25 ms.")
    verdicts = []
    for n, readings in rows:
        ov = readings[0]
        ok = ov.probe_ms is not None and abs(ov.probe_ms - 50) <= 5 and (not ov.instant_ms or max(ov.instant_ms) < 25)
        verdicts.append(f"N={n}: {'met' if ok else 'NOT met'}")
    print("  " + "; ".join(verdicts))


if __name__ == "__main__":
    main()
