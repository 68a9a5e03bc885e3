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

import asyncio
import datetime as dt
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from opsverify.config.restate import RestateInvocation, RestateTarget, SemVer
from opsverify.engine import ProbeContext
from opsverify.errors import ProbeTimeout, UnexpectedResponse
from opsverify.net.http import Timing, request
from opsverify.net.sampling import LatencyReading, Timed, sample_latency
from opsverify.net.tls import TlsSettings

MAX_BODY = 64 * 1024
Endpoint = Literal["admin", "ingress", "tunnel"]
REJECTED = (401, 403)
_NO_BODY: Any = object()


# -- facts -----------------------------------------------------------------------------------------
@dataclass
class Answer:
    """One HTTP exchange: status, latency and (the start of) the body."""

    url: str
    status: int
    latency_ms: float
    body: str

    def json(self) -> Any:
        """The body as JSON; raises :class:`UnexpectedResponse` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise UnexpectedResponse(f"{self.url} answered HTTP {self.status} with a body that is not JSON "
                                     f"({self.summary!r})") from None

    @property
    def summary(self) -> str:
        """The body in one short line: Restate's (or the proxy's) ``message`` when it sends JSON."""
        return summarize(self.body)

    @property
    def shown(self) -> str:
        """``HTTP 401 (missing or invalid bearer token)`` - status and summary, for messages."""
        text = f"HTTP {self.status}"
        if self.summary:
            text += f" ({self.summary})"
        if self.status in REJECTED:
            text += ": the bearer token was rejected or is missing"
        return text


@dataclass
class RestateHealth:
    """A health endpoint's answer (admin ``/health``, ingress ``/restate/health``, tunnel ``/health``)."""

    endpoint: Endpoint
    answer: Answer
    services: list[str] | None = None  # the ingress health lists the services it can route to

    @property
    def url(self) -> str:
        return self.answer.url

    @property
    def status(self) -> int:
        return self.answer.status

    @property
    def latency_ms(self) -> float:
        return self.answer.latency_ms

    @property
    def ok(self) -> bool:
        return self.answer.status == 200


@dataclass
class RestateVersion:
    """``GET /version`` of the admin API."""

    version: SemVer
    min_admin_api_version: int | None
    max_admin_api_version: int | None


@dataclass
class RegisteredService:
    """One service as the admin API lists it (``GET /services``)."""

    name: str
    type: str
    handlers: list[str]
    deployment_id: str
    revision: int | None
    public: bool | None


@dataclass
class RestateServices:
    """Every registered service, by name."""

    by_name: dict[str, RegisteredService] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return sorted(self.by_name)


@dataclass
class DeploymentView:
    """A deployment (``GET /deployments``) and what Restate's dry-run discovery of it found.

    ``reachable`` is ``None`` when it was not checked (no expected service lives on it).
    """

    id: str
    address: str  # the URI, or the Lambda ARN
    services: list[str]
    reachable: bool | None = None
    offers: list[str] = field(default_factory=list)  # services the discovery found
    problem: str = ""
    note: str = ""


@dataclass
class RestateDeployments:
    """The deployments the admin API lists, by id (the checked ones with Restate's verdict)."""

    by_id: dict[str, DeploymentView] = field(default_factory=dict)


@dataclass
class InvocationResult:
    """One call of a handler through the ingress."""

    call: str
    answer: Answer

    @property
    def status(self) -> int:
        return self.answer.status

    @property
    def value(self) -> tuple[bool, Any]:
        """``(True, decoded JSON)``, or ``(False, None)`` when the body is not JSON."""
        try:
            return True, json.loads(self.answer.body)
        except ValueError:
            return False, None


@dataclass
class AuthEndpoint:
    """What one endpoint answered with the configured token, without a token, with a wrong one."""

    endpoint: str
    url: str
    with_token: Answer
    without_token: Answer
    wrong_token: Answer


@dataclass
class RestateAuth:
    """The token's reception at each endpoint the token checks knock on."""

    endpoints: list[AuthEndpoint]
    token_label: str


@dataclass
class PreviousToken:
    """What each endpoint answered to the previous (rotated-out) token."""

    label: str
    answers: dict[str, Answer]

    @property
    def accepted_at(self) -> list[str]:
        return [f"{name} {a.url} (HTTP {a.status})" for name, a in self.answers.items() if a.status not in REJECTED]

    @property
    def rejected_at(self) -> list[str]:
        return [f"{name} {a.url} (HTTP {a.status})" for name, a in self.answers.items() if a.status in REJECTED]


@dataclass
class TokenSecret:
    """What the configured token reference holds, judged without showing it."""

    label: str
    problem: str  # "" when it looks like one bearer token
    previous_label: str | None
    same_as_previous: bool


@dataclass
class TokenAge:
    """How old the current token is, from the ``token_issued_at`` the environment file records."""

    label: str
    issued_at: dt.datetime
    age_days: float


# -- HTTP ------------------------------------------------------------------------------------------
def summarize(body: str, limit: int = 160) -> str:
    """A body in one short line; the ``message`` of a JSON error body when there is one."""
    text = body
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        text = data["message"]
        # Restate repeats its error code: "[META0003] [META0003] error when ..."
        first, _, rest = text.partition(" ")
        if first.startswith("[") and rest.startswith(first + " "):
            text = rest
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 3] + "..."


class _Client:
    """The requests of one probe against a Restate target, with its TLS settings and bearer token."""

    def __init__(self, ctx: ProbeContext[Any]) -> None:
        self.ctx = ctx
        self.target: RestateTarget = ctx.target
        self.tls = TlsSettings.of(self.target, ctx.env)
        self._token: str | None = None
        self.last_timing = Timing()

    async def __aenter__(self) -> _Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    @property
    def token(self) -> str | None:
        """The configured token (revealed on first use), or ``None``."""
        if self.target.token is None:
            return None
        if self._token is None:
            self._token = self.target.token.reveal().strip()
        return self._token

    async def send(
        self,
        method: str,
        url: str,
        *,
        bearer: str | None | Literal["configured"] = "configured",
        json_body: Any = _NO_BODY,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Answer:
        """Send one request; ``bearer`` is the configured token, another token, or ``None`` (no header)."""
        token = self.token if bearer == "configured" else bearer
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        content = None
        if json_body is not _NO_BODY:
            content = json.dumps(json_body).encode()
            sent.setdefault("content-type", "application/json")
        answer = await request(self.ctx, method, url, tls=self.tls, headers=sent, content=content,
                               what=f"{method} {url}", budget=timeout, max_body=MAX_BODY)
        self.last_timing = answer.timing
        return Answer(url=url, status=answer.status, latency_ms=answer.latency_ms, body=answer.text)

    async def admin_json(self, path: str, doing: str) -> Any:
        """``GET <admin_url>/<path>`` that must answer 200 with JSON; anything else is an error."""
        url = self.target.admin(path)
        self.ctx.phase = f"{doing} (GET {url})"
        answer = await self.send("GET", url)
        if answer.status != 200:
            raise UnexpectedResponse(f"cannot {doing}: GET {url} answered {answer.shown}")
        return answer.json()


# -- probes ----------------------------------------------------------------------------------------
def _health_url(target: RestateTarget, endpoint: Endpoint) -> str:
    url = {"admin": target.admin_health, "ingress": target.ingress_health, "tunnel": target.tunnel_health_url}[endpoint]
    if url is None:
        raise UnexpectedResponse(f"no {endpoint} health URL configured")  # the checks ask only when set
    return url


async def probe_health_latency(ctx: ProbeContext[Any], endpoint: Endpoint) -> LatencyReading:
    """The admin, ingress or tunnel health URL's latency, in samples the engine vouches for."""
    url = _health_url(ctx.target, endpoint)
    client = _Client(ctx)

    async def one() -> Timed:
        await client.send("GET", url)
        timing = client.last_timing
        return Timed(timing.start, timing.end, timing.phases())

    return await sample_latency(ctx, one, host=urlsplit(url).netloc or url, what=f"GET {url}")


async def probe_health(ctx: ProbeContext[Any], endpoint: Endpoint) -> RestateHealth:
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


async def probe_version(ctx: ProbeContext[Any]) -> RestateVersion:
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


async def probe_services(ctx: ProbeContext[Any]) -> RestateServices:
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


async def probe_deployments(ctx: ProbeContext[Any]) -> RestateDeployments:
    """``GET /deployments``, then Restate's own dry-run discovery of every deployment behind an
    expected service (concurrently)."""
    target: RestateTarget = ctx.target
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


async def probe_invocation(ctx: ProbeContext[Any]) -> InvocationResult:
    """Call the item's handler once through the ingress (``POST <ingress>/<service>[/<key>]/<handler>``)."""
    target: RestateTarget = ctx.target
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


async def probe_auth(ctx: ProbeContext[Any]) -> RestateAuth:
    """Knock on admin ``/version`` and the ingress health endpoint with the configured token,
    without a token and with a made-up one."""
    target: RestateTarget = ctx.target
    assert target.token is not None
    wrong = "opsverify-not-a-token-" + secrets.token_urlsafe(18)
    endpoints: list[AuthEndpoint] = []
    async with _Client(ctx) as client:
        _ = client.token  # a missing secret errors before anything is sent
        ctx.phase = "sending requests with, without and with a wrong bearer token"
        for name, url in target.auth_urls.items():
            with_token, without, wronged = await asyncio.gather(
                client.send("GET", url),
                client.send("GET", url, bearer=None),
                client.send("GET", url, bearer=wrong),
            )
            endpoints.append(AuthEndpoint(name, url, with_token, without, wronged))
    return RestateAuth(endpoints=endpoints, token_label=target.token.label)


async def probe_previous_token(ctx: ProbeContext[Any]) -> PreviousToken:
    """Knock on the same endpoints as :func:`probe_auth` with the previous (rotated-out) token."""
    target: RestateTarget = ctx.target
    assert target.previous_token is not None
    previous = target.previous_token.reveal().strip()
    ctx.phase = "sending requests with the previous bearer token"
    async with _Client(ctx) as client:
        names = list(target.auth_urls)
        answers = await asyncio.gather(
            *(client.send("GET", target.auth_urls[name], bearer=previous) for name in names)
        )
    return PreviousToken(label=target.previous_token.label, answers=dict(zip(names, answers)))


async def probe_token_age(ctx: ProbeContext[Any]) -> TokenAge:
    """The current token's age from ``token_issued_at`` (no network: the file records the date)."""
    target: RestateTarget = ctx.target
    issued = target.issued_at
    assert issued is not None
    age = (dt.datetime.now(dt.UTC) - issued).total_seconds() / 86400
    label = target.token.label if target.token is not None else "the bearer token"
    return TokenAge(label=label, issued_at=issued, age_days=age)


async def probe_token_secret(ctx: ProbeContext[Any]) -> TokenSecret:
    """Read the token reference (and ``previous_token``) and compare them (no network, no value shown)."""
    target: RestateTarget = ctx.target
    assert target.token is not None
    token = target.token.reveal().strip()
    problem = ""
    if token.lower().startswith("bearer"):
        problem = "a value that starts with 'Bearer' (store the token alone: the header prefix is added)"
    elif any(ch.isspace() for ch in token):
        problem = "a value with whitespace inside (more than one line or word: not one bearer token)"
    same = False
    previous_label = None
    if target.previous_token is not None:
        previous_label = target.previous_token.label
        previous = target.previous_token.reveal().strip()
        same = hmac.compare_digest(token.encode(), previous.encode())
    return TokenSecret(target.token.label, problem, previous_label, same)
