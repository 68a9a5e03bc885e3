"""HTTP(S) probes: the target's answer (status, headers, body), and its latency taken in samples.

Both go through the one network layer, :func:`opsverify.net.http.request`: a refused connection, a DNS
failure or a TLS verification failure is :class:`~opsverify.errors.Unreachable`; a stall is
:class:`~opsverify.errors.ProbeTimeout` naming the phase.

The answer (:func:`fetch`) is what the status, body, JSON and header checks read, taken once in the
wave of probes. The latency check reads :func:`latency` instead: a few samples at a bounded
per-host concurrency, each timed from the TCP connect to the last byte while the checker's loop was
quiet (:mod:`opsverify.net.sampling`).

Example::

    response = await fetch(ctx)          # ctx.target is an HttpTarget
    response.status, response.json_at("checks[0].healthy")
    reading = await latency(ctx)
    reading.value_ms, reading.samples
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from opsverify.config.http import HttpTarget
from opsverify.engine import ProbeContext
from opsverify.errors import UnexpectedResponse
from opsverify.jsonpath import JsonPathError, lookup
from opsverify.net.http import MAX_BODY, request, reveal_headers
from opsverify.net.sampling import LatencyReading, Timed, sample_latency
from opsverify.net.tls import TlsSettings

__all__ = ["MAX_BODY", "HttpResponse", "fetch", "latency"]


@dataclass
class HttpResponse:
    """What one request saw. ``headers`` keys are lower-case."""

    url: str
    status: int
    latency_ms: float
    headers: dict[str, str]
    body: str
    http_version: str = "HTTP/1.1"
    redirect_location: str | None = None
    phases: dict[str, float] = field(default_factory=dict)

    @cached_property
    def json(self) -> Any:
        """The body parsed as JSON; raises :class:`UnexpectedResponse` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            snippet = " ".join(self.body[:80].split())
            raise UnexpectedResponse(f"body is not JSON (starts with {snippet!r})") from None

    def json_at(self, path: str) -> Any:
        """The value at ``path`` (``a.b[0].c``) in the JSON body; raises ``KeyError`` when absent."""
        try:
            return lookup(self.json, path)
        except JsonPathError as exc:
            raise KeyError(str(exc)) from None


async def _send(ctx: ProbeContext[Any], what: str | None = None) -> Any:
    target: HttpTarget = ctx.target
    return await request(
        ctx, target.method, target.url, tls=TlsSettings.of(target, ctx.env), headers=reveal_headers(target.request_headers),
        content=target.body, follow_redirects=target.follow_redirects, what=what or f"request to {target.url}",
    )


async def fetch(ctx: ProbeContext[Any]) -> HttpResponse:
    """Send the target's request once and describe the answer."""
    answer = await _send(ctx)
    return HttpResponse(
        url=answer.url,
        status=answer.status,
        latency_ms=answer.latency_ms,
        headers=answer.headers,
        body=answer.text,
        http_version=answer.http_version,
        redirect_location=answer.headers.get("location"),
        phases=answer.timing.phases(),
    )


async def latency(ctx: ProbeContext[Any]) -> LatencyReading:
    """The target's response time in samples the engine vouches for (connect to last byte)."""
    target: HttpTarget = ctx.target
    where = target.url.split("//", 1)[-1].split("/", 1)[0]

    async def one() -> Timed:
        answer = await _send(ctx)
        return Timed(answer.timing.start, answer.timing.end, answer.timing.phases())

    return await sample_latency(ctx, one, host=where, what=f"{target.method} {target.url}")
