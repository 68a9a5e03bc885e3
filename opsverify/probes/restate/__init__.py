"""Restate probes over its HTTP APIs: admin (``/health``, ``/version``, ``/services``,
``/deployments``), ingress (``/restate/health``, handler calls) and a tunnel's ``/health``.

Every request carries ``Authorization: Bearer <token>`` when the target has a ``token`` (Restate
Cloud, its tunnels and self-hosted auth proxies demand one; the open-source server has no token
auth of its own). Library errors are translated here: refused / DNS / TLS failures are
:class:`~opsverify.errors.Unreachable`, stalls :class:`~opsverify.errors.ProbeTimeout`; an admin
answer that cannot be read (401 for a dead token, 502 from a proxy whose server is down) and a
health endpoint behind a gateway that refuses the token (401/403) are
:class:`~opsverify.errors.UnexpectedResponse`. What the checks exist to catch comes back as data:
a health endpoint's status, a deployment Restate cannot reach, the statuses of requests sent with,
without and with a wrong token.

Deployment reachability is judged by Restate itself, not from the runner: for the deployment
behind each expected service, the probe asks the admin API for a *dry-run* registration of the
same URI / Lambda ARN (``POST /deployments {"dry_run": true, "force": true, ...}``). Restate then
runs its service discovery against the deployment, from its own network, with the deployment's
own extra headers, and registers nothing. The runner usually cannot reach deployments itself
(private networks, Lambda, tunnels), and what matters is whether Restate can.

Example::

    health = await probe_health(ctx, "admin")     # ctx.target is a RestateTarget
    health.status, health.latency_ms
    services = await probe_services(ctx)
    services.by_name["Greeter"].handlers          # ["greet"]
"""

from __future__ import annotations

from opsverify.probes.restate.client import (
    MAX_BODY, Endpoint, REJECTED, Answer, summarize,
)
from opsverify.probes.restate.facts import (
    RestateHealth, RestateVersion, RegisteredService, RestateServices, DeploymentView, RestateDeployments,
    InvocationResult, AuthEndpoint, RestateAuth, PreviousToken, TokenSecret, TokenAge,
)
from opsverify.probes.restate.admin import (
    probe_health_latency, probe_health, probe_version, probe_services, probe_deployments, probe_invocation,
)
from opsverify.probes.restate.tokens import (
    probe_auth, probe_previous_token, probe_token_age, probe_token_secret,
)

__all__ = [
    "MAX_BODY", "Endpoint", "REJECTED", "Answer", "RestateHealth", "RestateVersion", "RegisteredService",
    "RestateServices", "DeploymentView", "RestateDeployments", "InvocationResult", "AuthEndpoint",
    "RestateAuth", "PreviousToken", "TokenSecret", "TokenAge", "summarize", "probe_health_latency",
    "probe_health", "probe_version", "probe_services", "probe_deployments", "probe_invocation", "probe_auth",
    "probe_previous_token", "probe_token_age", "probe_token_secret",
]
