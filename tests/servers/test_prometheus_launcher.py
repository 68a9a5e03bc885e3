"""Self-test of the Prometheus launcher: scrape a real prometheus_client exporter on 127.0.0.1.

The exporter (a counter and a histogram) runs in this process on a free port; Prometheus scrapes it
every second, so after >= 2 scrapes ``rate()`` and ``histogram_quantile()`` return numbers.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from opsverify.errors import SandboxError
from opsverify_sandbox.process import free_port
from opsverify_sandbox.servers.prometheus import PrometheusServer, start_prometheus


@dataclass
class Exporter:
    port: int
    jobs: Counter
    latency: Histogram


def _feed(exporter: Exporter, stop: threading.Event) -> None:
    """Keep the counter and histogram moving so rates are non-zero (bounded by ``stop``)."""
    step = 0
    while not stop.wait(0.1):
        exporter.jobs.inc()
        exporter.latency.observe(0.05 + (step % 10) * 0.01)
        step += 1


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    registry = CollectorRegistry()
    jobs = Counter("opsverify_jobs", "Jobs processed", registry=registry)
    latency = Histogram(
        "opsverify_job_seconds", "Job latency", buckets=(0.05, 0.1, 0.25, 1.0), registry=registry
    )
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(Exporter(port, jobs, latency), stop), daemon=True)
    feeder.start()
    yield Exporter(port, jobs, latency)
    stop.set()
    feeder.join(timeout=2)
    _shutdown(server, thread)


def _shutdown(server: WSGIServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=2)


@pytest.fixture(scope="module")
def prom(
    tmp_path_factory: pytest.TempPathFactory, exporter: Exporter
) -> Iterator[PrometheusServer]:
    workdir = tmp_path_factory.mktemp("prom")
    with start_prometheus(workdir, scrape_targets=[f"127.0.0.1:{exporter.port}"]) as server:
        yield server


def test_prometheus_is_ready(prom: PrometheusServer) -> None:
    assert httpx.get(f"{prom.url}/-/ready", timeout=5).status_code == 200


def test_exporter_target_is_up(prom: PrometheusServer) -> None:
    result = prom.wait_for_series('up{job="targets"} == 1', timeout_s=10)
    assert [r["value"][1] for r in result] == ["1"]


def test_rate_of_counter_is_positive(prom: PrometheusServer) -> None:
    result = prom.wait_for_series("rate(opsverify_jobs_total[4s]) > 0", timeout_s=15)
    assert float(result[0]["value"][1]) > 0


def test_histogram_quantile_is_a_number(prom: PrometheusServer) -> None:
    query = "histogram_quantile(0.9, sum by (le) (rate(opsverify_job_seconds_bucket[4s])))"
    result = prom.wait_for_series(f"{query} > 0", timeout_s=15)
    value = float(result[0]["value"][1])
    assert not math.isnan(value) and 0.05 <= value <= 0.25


def test_wait_for_series_gives_up_in_time(prom: PrometheusServer) -> None:
    started = time.monotonic()
    with pytest.raises(SandboxError, match="still empty"):
        prom.wait_for_series("opsverify_no_such_metric", timeout_s=0.5)
    assert time.monotonic() - started < 3


def test_bad_promql_raises_sandbox_error(prom: PrometheusServer) -> None:
    with pytest.raises(SandboxError, match="parse error"):
        prom.query("rate(")


def test_rule_files_are_loaded(tmp_path: Path, exporter: Exporter) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n  - name: opsverify\n    rules:\n"
        "      - alert: AlwaysFiring\n        expr: vector(1)\n"
    )
    with start_prometheus(tmp_path / "p", scrape_targets=[], rule_files=[rules]) as server:
        groups = httpx.get(f"{server.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert [g["rules"][0]["name"] for g in groups] == ["AlwaysFiring"]
