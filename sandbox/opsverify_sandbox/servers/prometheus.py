"""Launch a real Prometheus for the sandbox and the self-tests.

The binary is Debian's ``prometheus`` package (2.42), unpacked without root by
``scripts/tools/prometheus.sh`` into ``$OPSVERIFY_TOOLS/usr/bin/prometheus``.

Example::

    with start_prometheus(tmp_path / "prom", scrape_targets=["127.0.0.1:9101"]) as prom:
        prom.wait_for_series('up{job="targets"} == 1', timeout_s=10)
        result = prom.query('rate(jobs_total[5s])')   # the ``data.result`` list

Facts that bite (Prometheus 2.42.0+ds from Debian bookworm, verified here):

* ``rate()``/``increase()`` need at least 2 samples inside the range: with a 1 s scrape interval,
  use a range of >= 3 s and wait until the query is non-empty
  (:meth:`PrometheusServer.wait_for_series`).
* The FIRST scrape happens ~5 s after start whatever the scrape interval: the discovery manager
  hands targets to the scrape manager at most every 5 s. So ``up == 1`` takes ~5 s; budget for it.
* ``/-/ready`` is 503 until the TSDB is open; on an empty TSDB that is already the case when the
  port first answers (~0.1 s after start). ``/-/healthy`` is 200 as soon as the web server is up.
* The Debian build looks for console templates under ``/etc/prometheus``; they are not needed for
  the API, so the launcher points ``--web.console.*`` at the workdir to keep it self-contained.
* Scrape targets are ``host:port`` (no scheme); ``metrics_path`` defaults to ``/metrics``.
* Instant-query answers: ``{"status": "success", "data": {"resultType": "vector", "result":
  [{"metric": {...}, "value": [<unix ts float>, "<number as string>"]}]}}``; NaN is the string
  ``"NaN"`` (e.g. ``histogram_quantile`` over a window without observations).
* ``--storage.tsdb.retention.time`` is left at its default; the TSDB lives in ``workdir/data`` and
  goes away with the workdir.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from opsverify.errors import SandboxError
from opsverify_sandbox.process import ManagedProcess, ServerProcess, free_port
from opsverify_sandbox.tools import find_tool

HOST = "127.0.0.1"


@dataclass
class PrometheusServer(ServerProcess):
    """A running Prometheus on 127.0.0.1."""

    process: ManagedProcess
    port: int
    workdir: Path
    config_path: Path

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9090``."""
        return f"http://{HOST}:{self.port}"

    def query(self, promql: str, *, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        """Run an instant query; return ``data.result`` (raises SandboxError on a query error)."""
        try:
            response = httpx.get(
                f"{self.url}/api/v1/query", params={"query": promql}, timeout=timeout_s
            )
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SandboxError(f"prometheus query {promql!r}: {exc}") from exc
        if body.get("status") != "success":
            raise SandboxError(f"prometheus query {promql!r}: {body.get('error', body)}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for_series(
        self, promql: str, timeout_s: float = 15.0, interval_s: float = 0.25
    ) -> list[dict[str, Any]]:
        """Wait (bounded) until instant query ``promql`` returns a non-empty result; return it."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(promql)
            if result:
                return result
            if time.monotonic() + interval_s > deadline:
                raise SandboxError(
                    f"prometheus: {promql!r} still empty after {timeout_s:g} s; "
                    f"targets: {self.targets_health()}"
                )
            time.sleep(interval_s)

    def targets_health(self) -> list[tuple[str, str, str]]:
        """``(scrapeUrl, health, lastError)`` of every active target (for error messages)."""
        try:
            body = httpx.get(f"{self.url}/api/v1/targets", timeout=5.0).json()
        except (httpx.HTTPError, ValueError):
            return []
        return [
            (t.get("scrapeUrl", ""), t.get("health", ""), t.get("lastError", ""))
            for t in body.get("data", {}).get("activeTargets", [])
        ]


def prometheus_config(
    scrape_targets: Sequence[str],
    scrape_interval: str,
    rule_files: Sequence[Path] | None = None,
    job: str = "targets",
) -> str:
    """The YAML config: one job ``job`` scraping ``scrape_targets`` (``host:port``)."""
    lines = [
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  evaluation_interval: {scrape_interval}",
    ]
    if rule_files:
        lines.append("rule_files:")
        lines += [f'  - "{path}"' for path in rule_files]
    lines += ["scrape_configs:", f"  - job_name: {job}", "    static_configs:"]
    targets = ", ".join(f'"{target}"' for target in scrape_targets)
    lines.append(f"      - targets: [{targets}]")
    return "\n".join(lines) + "\n"


def start_prometheus(
    workdir: Path,
    *,
    scrape_targets: Sequence[str] = (),
    scrape_interval: str = "1s",
    rule_files: Sequence[Path] | None = None,
    timeout_s: float = 20.0,
    port: int | None = None,
    job: str = "targets",
) -> PrometheusServer:
    """Start Prometheus on 127.0.0.1 scraping ``scrape_targets``; wait for ready.

    ``port`` defaults to a free one (the sandbox passes its fixed port); ``job`` names the scrape job.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    binary = find_tool("prometheus")
    config = workdir / "prometheus.yml"
    config.write_text(prometheus_config(scrape_targets, scrape_interval, rule_files, job=job))
    port = port or free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address={HOST}:{port}",
        f"--web.console.templates={workdir / 'consoles'}",
        f"--web.console.libraries={workdir / 'console_libraries'}",
    ]
    proc = ManagedProcess.start(argv, log_path=workdir / "prometheus.log", name="prometheus")
    ready_url = f"http://{HOST}:{port}/-/ready"
    proc.wait_until(
        lambda: httpx.get(ready_url, timeout=1.0).status_code == 200, timeout_s, "ready (/-/ready)"
    )
    return PrometheusServer(process=proc, port=port, workdir=workdir, config_path=config)
