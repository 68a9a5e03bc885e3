"""Sandbox services of the SLO checks: the instrumented SLO demo service, and a Prometheus scraping it.

Ports (fixed, as ``environments/local.yaml`` names them): demo service 19100 (``/metrics``, ``/jobs``,
``/ws``), Prometheus 19090 (scrape job ``slo-demo``, every second).

Prometheus is started only when its binary is installed (``bash scripts/tools/prometheus.sh``);
otherwise ``sandbox up`` says so and goes on. Its start waits (bounded) until the first rates exist,
because Prometheus scrapes for the first time ~5 s after it starts and ``rate()`` needs two scrapes.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from opsverify.errors import SandboxError
from opsverify_sandbox.manager import Started, service
from opsverify_sandbox.process import ManagedProcess
from opsverify_sandbox.servers.prometheus import start_prometheus
from opsverify_sandbox.tools import find_tool

DEMO_PORT = 19100
PROMETHEUS_PORT = 19090
JOB = "slo-demo"
FIRST_RATES_TIMEOUT_S = 30.0


@service("slo-demo", order=60)
def start_slo_demo(directory: Path) -> Started:
    """SLO demo service: an instrumented jobs API driving itself at 20 requests/s, with /metrics."""
    proc = ManagedProcess.start(
        [sys.executable, "-m", "opsverify_sandbox.slo_demo", "--port", str(DEMO_PORT),
         "--load-rps", "20", "--ws-clients", "2"],
        log_path=directory / "logs" / "slo-demo.log",
        name="slo-demo",
    )
    proc.wait_for_port("127.0.0.1", DEMO_PORT, timeout_s=15)
    return Started([proc], {"http": DEMO_PORT})


@service("prometheus", order=61)
def start_sandbox_prometheus(directory: Path) -> Started:
    """Prometheus scraping the SLO demo service every second (when the binary is installed)."""
    try:
        find_tool("prometheus")
    except SandboxError:
        note = (
            "not installed, so not started: install it with `bash scripts/tools/prometheus.sh` "
            "(Debian's package, unpacked without root), then run `opsverify sandbox up` again; "
            "until then the prometheus: checks of --env local error"
        )
        print(f"  {'prometheus':<12} {note}", flush=True)
        return Started([], {}, {"skipped": note})
    workdir = directory / "prometheus"
    shutil.rmtree(workdir / "data", ignore_errors=True)  # a fresh TSDB per start
    server = start_prometheus(
        workdir, scrape_targets=[f"127.0.0.1:{DEMO_PORT}"], scrape_interval="1s",
        port=PROMETHEUS_PORT, job=JOB,
    )
    try:
        server.wait_for_series(
            f'sum(rate(http_requests_total{{job="{JOB}"}}[10s])) > 0', timeout_s=FIRST_RATES_TIMEOUT_S
        )
    except SandboxError:
        server.stop()
        raise
    return Started([server.process], {"http": PROMETHEUS_PORT})
