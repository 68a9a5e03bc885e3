"""Restate admin and ingress probes: health (and its latency), version, registered services and
deployments (with their discovery), and one invocation through the ingress.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

from opsverify.config.restate import RestateInvocation, RestateTarget, SemVer
from opsverify.engine import ProbeContext
from opsverify.errors import ProbeTimeout, UnexpectedResponse
from opsverify.net.sampling import LatencyReading, Timed, sample_latency
from opsverify.probes.restate.client import _Client, _health_url, _NO_BODY, Endpoint, REJECTED
from opsverify.probes.restate.facts import (
    DeploymentView,
    InvocationResult,
    RegisteredService,
    RestateDeployments,
    RestateHealth,
    RestateServices,
    RestateVersion,
)


async def probe_health_latency(ctx: ProbeContext[RestateTarget], endpoint: Endpoint) -> LatencyReading:
    """The admin, ingress or tunnel health URL's latency, in samples the engine vouches for."""
    url = _health_url(ctx.target, endpoint)
    client = _Client(ctx)

    async def one() -> Timed:
        await client.send("GET", url)
        timing = client.last_timing
        return Timed(timing.start, timing.end, timing.phases())

    return await sample_latency(ctx, one, host=urlsplit(url).netloc or url, what=f"GET {url}")


async def probe_health(ctx: ProbeContext[RestateTarget], endpoint: Endpoint) -> RestateHealth:
    """``GET`` the admin, ingress or tunnel health URL once (with the token, when configured)."""
    url = _health_url(ctx.target, endpoint)
    ctx.phase = f"GET {url}"
    async with _Client(ctx) as client:
        answer = await client.send("GET", url)
    if answer.status in REJECTED:
        # the gateway in front refused us: health cannot be seen (the token checks say why)
        raise UnexpectedResponse(f"cannot see the {endpoint} health: GET {url} answered {answer.shown}")
    services = None
    if endpoint == "ingress" and answer.status == 200:
        try:
            data = json.loads(answer.body)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("services"), list):
            services = [str(s) for s in data["services"]]
    return RestateHealth(endpoint=endpoint, answer=answer, services=services)


async def probe_version(ctx: ProbeContext[RestateTarget]) -> RestateVersion:
    """``GET /version`` of the admin API."""
    async with _Client(ctx) as client:
        data = await client.admin_json("/version", "read the server version")
    text = data.get("version") if isinstance(data, dict) else None
    if not isinstance(text, str):
        raise UnexpectedResponse(f"{ctx.target.admin('/version')} has no version field")
    try:
        version = SemVer.parse(text)
    except ValueError:
        raise UnexpectedResponse(f"the server reports version {text!r}, which is not a semantic version") from None
    return RestateVersion(version, data.get("min_admin_api_version"), data.get("max_admin_api_version"))


async def probe_services(ctx: ProbeContext[RestateTarget]) -> RestateServices:
    """``GET /services`` of the admin API: every registered service with its handlers and deployment."""
    async with _Client(ctx) as client:
        data = await client.admin_json("/services", "list the registered services")
    listed = data.get("services") if isinstance(data, dict) else None
    if not isinstance(listed, list):
        raise UnexpectedResponse(f"{ctx.target.admin('/services')} has no services list")
    result = RestateServices()
    for entry in listed:
        if not isinstance(entry, dict) or "name" not in entry:
            continue
        result.by_name[str(entry["name"])] = RegisteredService(
            name=str(entry["name"]),
            type=str(entry.get("ty") or entry.get("type") or "?"),
            handlers=[str(h.get("name")) for h in entry.get("handlers") or [] if isinstance(h, dict)],
            deployment_id=str(entry.get("deployment_id") or ""),
            revision=entry.get("revision"),
            public=entry.get("public"),
        )
    return result


def _discovery_request(deployment: dict[str, Any]) -> dict[str, Any]:
    """A dry-run registration of the same deployment: discovery runs, nothing is registered."""
    # force: without it, Restate answers a dry run of an already registered URI from its own
    # records, without contacting the deployment at all (verified on 1.7.12: 200 in ~20 ms for a
    # deployment that was down). dry_run still writes nothing, forced or not.
    body: dict[str, Any] = {"dry_run": True, "force": True}
    if deployment.get("arn"):
        body["arn"] = deployment["arn"]
        if deployment.get("assume_role_arn"):
            body["assume_role_arn"] = deployment["assume_role_arn"]
    else:
        body["uri"] = deployment["uri"]
        if str(deployment.get("http_version", "")).upper() in ("HTTP/1.1", "HTTP/1.0"):
            body["use_http_11"] = True
    if deployment.get("additional_headers"):
        body["additional_headers"] = deployment["additional_headers"]
    if deployment.get("auth"):
        body["auth"] = deployment["auth"]
    return body


async def _discover(client: _Client, view: DeploymentView, raw: dict[str, Any]) -> None:
    url = client.target.admin("/deployments")
    client.ctx.phase = f"Restate discovering deployment {view.id} at {view.address}"
    try:
        answer = await client.send("POST", url, json_body=_discovery_request(raw))
    except ProbeTimeout:
        raise ProbeTimeout(
            f"Restate did not finish discovering deployment {view.id} at {view.address} "
            f"within {client.ctx.timeout:g} s"
        ) from None
    if answer.status in (200, 201):
        data = answer.json()
        offered = data.get("services") if isinstance(data, dict) else None
        view.reachable = True
        view.offers = [str(s.get("name")) for s in offered or [] if isinstance(s, dict)]
    elif answer.status == 409:
        # Restate reached it, but what it serves now conflicts with the registered revision
        view.reachable = True
        view.offers = list(view.services)
        view.note = f"its discovery conflicts with the registered revision ({answer.summary})"
    elif answer.status in REJECTED:
        raise UnexpectedResponse(
            f"cannot ask Restate to discover deployment {view.id}: POST {url} answered {answer.shown} "
            "(the token needs admin rights for a dry-run registration)"
        )
    else:
        view.reachable = False
        view.problem = f"HTTP {answer.status}: {answer.summary or 'no message'}"


async def probe_deployments(ctx: ProbeContext[RestateTarget]) -> RestateDeployments:
    """``GET /deployments``, then Restate's own dry-run discovery of every deployment behind an
    expected service (concurrently)."""
    target = ctx.target
    services: RestateServices = await ctx.depend("restate_services")
    async with _Client(ctx) as client:
        data = await client.admin_json("/deployments", "list the deployments")
        listed = data.get("deployments") if isinstance(data, dict) else None
        if not isinstance(listed, list):
            raise UnexpectedResponse(f"{target.admin('/deployments')} has no deployments list")
        result = RestateDeployments()
        raw_by_id: dict[str, dict[str, Any]] = {}
        for entry in listed:
            if not isinstance(entry, dict) or "id" not in entry:
                continue
            view = DeploymentView(
                id=str(entry["id"]),
                address=str(entry.get("uri") or entry.get("arn") or "?"),
                services=[str(s.get("name")) for s in entry.get("services") or [] if isinstance(s, dict)],
            )
            result.by_id[view.id] = view
            raw_by_id[view.id] = entry
        wanted = {
            services.by_name[s.name].deployment_id for s in target.services if s.name in services.by_name
        }
        checks = [
            _discover(client, result.by_id[dep_id], raw_by_id[dep_id])
            for dep_id in sorted(wanted)
            if dep_id in result.by_id
        ]
        await asyncio.gather(*checks)
    return result


async def probe_invocation(ctx: ProbeContext[RestateTarget]) -> InvocationResult:
    """Call the item's handler once through the ingress (``POST <ingress>/<service>[/<key>]/<handler>``)."""
    target = ctx.target
    item: RestateInvocation = ctx.item
    assert target.ingress_url is not None
    url = f"{target.ingress_url}/{item.path}"
    headers = {"idempotency-key": item.idempotency_key} if item.idempotency_key else {}
    ctx.phase = f"calling {item.call} (POST {url})"
    async with _Client(ctx) as client:
        answer = await client.send(
            "POST", url, json_body=item.input if item.sends_input else _NO_BODY, headers=headers
        )
    return InvocationResult(call=item.call, answer=answer)
