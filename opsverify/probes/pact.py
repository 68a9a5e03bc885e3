"""Pact Broker probes: the heartbeat, and the can-i-deploy matrix of one release.

Shapes relied on (pact_broker's own resources, see the emulator's docstring in
:mod:`opsverify_sandbox.servers.pact_broker`):

* ``GET /diagnostic/status/heartbeat`` -> 200 ``{"ok": true, "_links": {...}}`` (no database access:
  "the broker process answers"). Any other status is a failing heartbeat, returned as data.
* ``GET /matrix?q[][pacticipant]=P&q[][version]=V&latestby=cvp&environment=E`` (what
  ``pact-broker can-i-deploy --pacticipant P --version V --to-environment E`` asks) ->
  ``{"summary": {"deployable": bool|null, "reason": "...", "success": n, "failed": n, "unknown": n},
  "matrix": [{"consumer": {"name", "version": {"number"}}, "provider": {"name", "version": {"number"}|null},
  "verificationResult": {"success": bool, "verifiedAt"}|null, "ignored"?: true}]}``.
  ``reason`` holds one line per reason, newline-separated.

A "no" from the broker is data (the can-i-deploy check fails and lists the failing pacts); a broker
that refuses the checker's token (401/403), or answers something unreadable, is an error.

Example::

    beat = await heartbeat(ctx)          # .status, .ok, .elapsed_ms
    answer = await can_i_deploy(ctx)     # ctx.item is a CanIDeploy; .deployable, .failing, .unverified
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opsverify.config.pact import CanIDeploy, PactTarget
from opsverify.engine import ProbeContext
from opsverify.errors import BrokerDenied, UnexpectedResponse, VersionUnknown
from opsverify.net.sampling import LatencyReading
from opsverify.probes.webapi import Answer, WebApi

HEARTBEAT = "/diagnostic/status/heartbeat"
MATRIX = "/matrix"


@dataclass
class Heartbeat:
    """``/diagnostic/status/heartbeat``: HTTP status, the ``ok`` flag, latency."""

    url: str
    status: int
    ok: bool
    elapsed_ms: float
    body: str = ""


@dataclass
class MatrixRow:
    """One consumer version / provider version pair of the matrix, with its verification result."""

    consumer: str
    consumer_version: str
    provider: str
    provider_version: str | None
    success: bool | None  # None: the pact was never verified by that provider version
    ignored: bool = False

    @property
    def pact(self) -> str:
        """``consumer (v) -> provider (v)``, how messages name a pact."""
        provider_version = self.provider_version or "no verified version"
        return f"{self.consumer} ({self.consumer_version}) -> {self.provider} ({provider_version})"


@dataclass
class CanIDeployResult:
    """The broker's answer to "may this version go to that environment?"."""

    pacticipant: str
    version: str
    environment: str
    deployable: bool | None
    reason: str
    rows: list[MatrixRow] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def failing(self) -> list[MatrixRow]:
        """Pacts whose verification failed (not ignored)."""
        return [r for r in self.rows if r.success is False and not r.ignored]

    @property
    def unverified(self) -> list[MatrixRow]:
        """Pacts without a verification result from the deployed provider version (not ignored)."""
        return [r for r in self.rows if r.success is None and not r.ignored]

    @property
    def reasons(self) -> list[str]:
        return [line.strip() for line in self.reason.splitlines() if line.strip()]


def _headers(target: PactTarget) -> dict[str, str]:
    headers = {"accept": "application/hal+json, application/json"}
    if target.token is not None:
        headers["authorization"] = "Bearer " + target.token.reveal().strip()
    return headers


def _api(ctx: ProbeContext[PactTarget]) -> WebApi:
    target = ctx.target
    return WebApi(ctx, base_url=target.url, ca_bundle=target.ca_bundle, verify_tls=target.verify_tls)


def _denied(api: WebApi, answer: Answer, doing: str) -> BrokerDenied:
    return BrokerDenied(
        f"{api.where} refused the checker's credentials (HTTP {answer.status}): cannot {doing}; "
        "check the broker token the environment file references"
    )


async def heartbeat(ctx: ProbeContext[PactTarget]) -> Heartbeat:
    """``GET /diagnostic/status/heartbeat`` (any HTTP status is data)."""
    target = ctx.target
    api = _api(ctx)
    answer = await api.call("GET", HEARTBEAT, headers=_headers(target))
    ok = answer.status == 200 and isinstance(answer.json, dict) and answer.json.get("ok") is True
    return Heartbeat(url=target.url + HEARTBEAT, status=answer.status, ok=ok, elapsed_ms=answer.elapsed_ms,
                     body=answer.text)


async def heartbeat_latency(ctx: ProbeContext[PactTarget]) -> LatencyReading:
    """The heartbeat's latency, in samples the engine vouches for."""
    return await _api(ctx).latency("GET", HEARTBEAT, headers=_headers(ctx.target))


def _name(node: Any) -> str:
    return str(node.get("name", "?")) if isinstance(node, dict) else "?"


def _number(node: Any) -> str | None:
    version = node.get("version") if isinstance(node, dict) else None
    if isinstance(version, dict) and version.get("number") is not None:
        return str(version["number"])
    return None


def _row(raw: Any) -> MatrixRow:
    if not isinstance(raw, dict):
        raise ValueError("a matrix row is not an object")
    verification = raw.get("verificationResult")
    success = verification.get("success") if isinstance(verification, dict) else None
    return MatrixRow(
        consumer=_name(raw.get("consumer")),
        consumer_version=_number(raw.get("consumer")) or "?",
        provider=_name(raw.get("provider")),
        provider_version=_number(raw.get("provider")),
        success=success if isinstance(success, bool) else None,
        ignored=bool(raw.get("ignored")),
    )


async def can_i_deploy(ctx: ProbeContext[PactTarget]) -> CanIDeployResult:
    """The matrix for one ``can_i_deploy`` entry (``ctx.item``), latest by consumer version+provider."""
    target = ctx.target
    item: CanIDeploy = ctx.item
    version = item.resolved_version()
    if version is None:
        raise VersionUnknown(
            f"{item.version_env} is not set: cannot tell which version of {item.pacticipant} to ask about"
        )
    api = _api(ctx)
    params = [
        ("q[][pacticipant]", item.pacticipant),
        ("q[][version]", version),
        ("latestby", "cvp"),
        ("environment", item.to_environment),
    ]
    doing = f"ask whether {item.pacticipant} {version} can be deployed to {item.to_environment}"
    answer = await api.call("GET", MATRIX, headers=_headers(target), params=params)
    if answer.status in (401, 403):
        raise _denied(api, answer, doing)
    body = answer.json
    if answer.status != 200 or not isinstance(body, dict) or not isinstance(body.get("summary"), dict):
        detail = _broker_errors(body) or answer.text
        raise UnexpectedResponse(
            f"{MATRIX} on {api.where}: HTTP {answer.status}" + (f" ({detail})" if detail else "")
            + f": cannot {doing}"
        )
    summary: dict[str, Any] = body["summary"]
    try:
        rows = [_row(raw) for raw in body.get("matrix") or []]
    except ValueError as exc:
        raise UnexpectedResponse(f"{MATRIX} on {api.where}: {exc}") from None
    deployable = summary.get("deployable")
    counts = {k: int(summary[k]) for k in ("success", "failed", "unknown") if isinstance(summary.get(k), int)}
    return CanIDeployResult(
        pacticipant=item.pacticipant,
        version=version,
        environment=item.to_environment,
        deployable=deployable if isinstance(deployable, bool) else None,
        reason=str(summary.get("reason") or ""),
        rows=rows,
        counts=counts,
    )


def _broker_errors(body: Any) -> str:
    """The broker's ``errors`` (a dict of lists, or a list) as one short line."""
    if not isinstance(body, dict):
        return ""
    errors = body.get("errors")
    found: list[str] = []
    if isinstance(errors, dict):
        for key, values in errors.items():
            for value in values if isinstance(values, list) else [values]:
                found.append(f"{key}: {value}")
    elif isinstance(errors, list):
        found = [str(e) for e in errors]
    elif body.get("error"):
        found = [str(body["error"])]
    return "; ".join(found)[:300]
