"""``opsverify serve`` for real: a real Redis and the demo HTTP service, checked every second by a
serve process and scraped by a real Prometheus (Debian's package); PromQL sees the series flip when
Redis is stopped, and ``/healthz`` flips 200 -> 503. Bad arguments are one-line usage errors;
SIGTERM ends it cleanly; a run longer than the interval is reported and delays the next one.
"""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opsverify_sandbox.process import free_port
from opsverify_sandbox.servers.prometheus import start_prometheus
from opsverify_sandbox.servers.redis import start_redis
from tests.harness import ROOT, write_env

PING = "test_redis_answers_ping_with_its_credentials"


def start_serve(env_file: Path, port: int, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "opsverify", "serve", "--env-file", str(env_file), "--interval", "1s",
            "--listen", f"127.0.0.1:{port}", *args]
    return subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def until(predicate, timeout_s: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    server = start_redis(tmp_path / "redis", password=secrets.token_urlsafe(16))
    yield server
    server.stop()


def test_serve_is_scraped_by_prometheus_and_flips_when_redis_stops(tmp_path, demo, redis_server):
    password = redis_server.password or ""
    env_file = write_env(tmp_path, {
        "http": [{"name": "api", "url": demo.url("/healthz"), "max_latency_ms": {"warn": 30000, "critical": 60000}}],
        "redis": [{"name": "cache", "url": f"redis://127.0.0.1:{redis_server.port}/0",
                   "password": {"env": "SERVE_REDIS_PASSWORD"}}],
    }, name="served")
    port = free_port()
    history = tmp_path / "history.sqlite"
    proc = start_serve(env_file, port, "-m", "smoke", "--healthz-severity", "critical", "--history", str(history),
                       env={"SERVE_REDIS_PASSWORD": password})
    base = f"http://127.0.0.1:{port}"
    try:
        with start_prometheus(tmp_path / "prom", scrape_targets=[f"127.0.0.1:{port}"]) as prom:
            ok = until(lambda: httpx.get(f"{base}/healthz", timeout=5).status_code == 200, 60, "healthz 200")
            assert ok
            assert httpx.get(f"{base}/healthz", timeout=5).text.startswith("ok: all ")
            query = f'opsverify_check_success{{check="{PING}",target="cache",env="served"}}'
            up = prom.wait_for_series(f"{query} == 1", timeout_s=60)
            assert up[0]["metric"]["system"] == "datastores"
            assert prom.wait_for_series('opsverify_check_success{system="http",target="api"} == 1', timeout_s=30)
            assert prom.wait_for_series('opsverify_serve_runs_total{result="completed"} >= 1', timeout_s=30)
            assert prom.wait_for_series("opsverify_serve_last_run_timestamp_seconds > 0", timeout_s=30)
            assert prom.wait_for_series('opsverify_run_duration_seconds{env="served"} >= 0', timeout_s=30)
            assert prom.wait_for_series("opsverify_serve_healthy == 1", timeout_s=30)

            redis_server.stop()
            assert prom.wait_for_series(f"{query} == 0", timeout_s=60)
            assert prom.wait_for_series(f'opsverify_check_error{{check="{PING}",target="cache"}} == 1', timeout_s=30)
            assert prom.wait_for_series('opsverify_check_success{system="http",target="api"} == 1', timeout_s=30)
            assert prom.wait_for_series("opsverify_serve_healthy == 0", timeout_s=30)
            bad = until(lambda: (r := httpx.get(f"{base}/healthz", timeout=5)).status_code == 503 and r, 30,
                        "healthz 503")
            assert f"error: {PING}[served-cache]" in bad.text
            assert "unhealthy: 2 of 3 checks of severity critical or higher" in bad.text
            assert password not in httpx.get(f"{base}/metrics", timeout=5).text + bad.text
            # the live status page, from the same history: the erroring Redis check first, the HTTP one after
            page = httpx.get(f"{base}/status", timeout=10)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            cache, api = page.text.find('<div class="target">cache</div>'), page.text.find('<div class="target">api</div>')
            assert 0 <= cache < api, "the target that could not be verified is not listed first"
            assert "could not verify" in page.text[cache:api] and "healthy" in page.text[api:]
            assert password not in page.text
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert "opsverify serve: stopped" in err and "Traceback" not in err
    assert password not in err
    with sqlite3.connect(history) as conn:
        runs = conn.execute("SELECT started_at, finished_at FROM runs ORDER BY started_at").fetchall()
        outcomes = {o for (o,) in conn.execute("SELECT outcome FROM checks WHERE check_name = ?", (PING,))}
    assert len(runs) >= 2 and outcomes >= {"passed", "error"}
    assert all(later[0] >= earlier[1] for earlier, later in zip(runs, runs[1:])), "two runs overlapped"


def test_healthz_is_503_before_the_first_run_and_a_long_run_is_reported(tmp_path, blackhole):
    env_file = write_env(tmp_path, {"http": [{"name": "stalled", "url": f"http://127.0.0.1:{blackhole}/",
                                               "timeout_s": 3}]}, name="slow")
    port = free_port()
    proc = start_serve(env_file, port, "-m", "smoke")
    base = f"http://127.0.0.1:{port}"
    try:
        first = until(lambda: httpx.get(f"{base}/healthz", timeout=5), 30, "serve answers")
        assert first.status_code == 503
        assert first.text.startswith("unhealthy: no run has completed yet")
        assert httpx.get(f"{base}/livez", timeout=5).status_code == 200
        missing = httpx.get(f"{base}/status", timeout=5)  # no --history: no page, and it says how to have one
        assert missing.status_code == 404 and "--history PATH" in missing.text
        until(lambda: "opsverify_serve_overruns_total 1.0" in httpx.get(f"{base}/metrics", timeout=5).text, 60,
              "an overrun counted")
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert "took longer than the interval (1 s): the next run starts now" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--interval", "soon"], "opsverify serve: --interval: 'soon' is not a duration"),
    (["--interval", "0.5s"], "opsverify serve: --interval: '0.5s' is outside 1s .. 168h"),
    (["--listen", "9464"], "opsverify serve: --listen: '9464': expected HOST:PORT"),
    (["--listen", "127.0.0.1:99999"], "opsverify serve: --listen: '127.0.0.1:99999': port '99999' is not a number"),
    (["--healthz-severity", "urgent"], "opsverify serve: --healthz-severity: 'urgent' is not one of blocker"),
    (["--env-file", "/nonexistent/env.yaml"], "opsverify serve: --env-file: /nonexistent/env.yaml: no such file"),
    ([], "opsverify serve: --env: no environment given"),
    (["--history-keep-days", "-5"], "opsverify serve: --history-keep-days: '-5': must be more than 0"),
    (["--history-keep-days", "nan"], "opsverify serve: --history-keep-days: 'nan': must be more than 0"),
])
def test_bad_arguments_are_one_line_usage_errors(tmp_path, args, message):
    good = [] if args == [] or args[0] == "--env-file" else \
        ["--env-file", str(write_env(tmp_path, {"http": [{"name": "x", "url": "http://127.0.0.1:1/"}]}))]
    proc = subprocess.run([sys.executable, "-m", "opsverify", "serve", *good, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith(message), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_bad_environment_file_and_a_taken_port_are_usage_errors(tmp_path):
    broken = write_env(tmp_path, {"http": [{"name": "x", "url": "http://127.0.0.1:1/", "stauts": 200}]}, name="broken")
    proc = subprocess.run([sys.executable, "-m", "opsverify", "serve", "--env-file", str(broken)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "stauts" in proc.stderr and str(broken) in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr

    good = write_env(tmp_path, {"http": [{"name": "x", "url": "http://127.0.0.1:1/"}]}, name="good")
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "opsverify", "serve", "--env-file", str(good),
                               "--listen", f"127.0.0.1:{port}"], cwd=ROOT, capture_output=True, text=True,
                              timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"opsverify serve: --listen: cannot listen on 127.0.0.1:{port}"), proc.stderr
