"""NATS monitoring endpoint: ``/healthz`` on the server's monitoring port.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opsverify.config.nats import NatsTarget
from opsverify.engine import ProbeContext
from opsverify.net.http import request
from opsverify.net.tls import TlsSettings, base_dir


# ---------------------------------------------------------------------------------------------
# monitoring endpoint
# ---------------------------------------------------------------------------------------------


@dataclass
class MonitorHealth:
    """The answer of ``/healthz`` on the monitoring port."""

    url: str
    status: int
    health: str | None
    error: str | None
    latency_ms: float


async def _monitor_get(ctx: ProbeContext[NatsTarget], target: NatsTarget, path: str) -> tuple[int, Any, float]:
    """GET a monitoring endpoint through the network layer: status, JSON body and latency (ms)."""
    assert target.monitoring_url is not None
    url = target.monitoring_url.rstrip("/") + path
    tls = TlsSettings(target.ca_bundle, url.startswith("https://"), base_dir(ctx.env))
    answer = await request(ctx, "GET", url, tls=tls, what=f"GET {path}", budget=ctx.left(reserve=0.05))
    body: Any = answer.json_or_none()
    if body is None:
        body = {"raw": answer.text[:200]}
    return answer.status, body, answer.latency_ms


async def probe_monitoring(ctx: ProbeContext[NatsTarget]) -> MonitorHealth:
    """GET ``<monitoring_url>/healthz``."""
    target = ctx.target
    ctx.phase = f"GET {target.monitoring_url}/healthz"
    status, body, latency = await _monitor_get(ctx, target, "/healthz")
    health = body.get("status") if isinstance(body, dict) else None
    error = body.get("error") if isinstance(body, dict) else None
    url = f"{(target.monitoring_url or '').rstrip('/')}/healthz"
    return MonitorHealth(url, status, health if isinstance(health, str) else None,
                         error if isinstance(error, str) else None, latency)
