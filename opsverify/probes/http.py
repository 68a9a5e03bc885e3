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
from typing import Any

from opsverify.config.http import HttpTarget
from opsverify.engine import ProbeContext
from opsverify.errors import JsonPathError, UnexpectedResponse
from opsverify.jsonpath import lookup
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
    truncated: bool = False  # the body went on past MAX_BODY bytes: only its start was read
    _document: Any = field(default=None, init=False, repr=False, compare=False)

    def whole_body(self) -> str:
        """The body; raises :class:`UnexpectedResponse` when it was longer than opsverify reads."""
        if self.truncated:
            raise UnexpectedResponse(
                f"{self.url} answered a body longer than {MAX_BODY // 1024} KiB: only its start was read, so "
                "what the rest holds cannot be checked") from None
        return self.body

    def contains(self, text: str) -> bool:
        """Whether the body holds ``text``; when it does not and the body was longer than what was read,
        raises :class:`UnexpectedResponse` (the rest was not seen, so its absence is no evidence)."""
        return text in self.body or text in self.whole_body()

    def not_json(self) -> str | None:
        """What the answer is when its body is not JSON (status, content type, start), else ``None``.

        An answer that is not JSON where JSON fields are expected is a wrong answer (a maintenance
        page, a proxy's error page), not an unreadable one: the JSON check fails with these words.
        """
        body = self.whole_body()
        try:
            self._document = json.loads(body)
        except ValueError:
            kind = self.headers.get("content-type", "no content type").split(";")[0].strip()
            snippet = " ".join(body[:80].split())
            return f"HTTP {self.status} with a {kind} body that is not JSON (starts with {snippet!r})"
        return None

    @property
    def json(self) -> Any:
        """The body parsed as JSON; raises :class:`UnexpectedResponse` when it is not JSON."""
        problem = self.not_json()
        if problem is not None:
            raise UnexpectedResponse(f"{self.url}: {problem}")
        return self._document

    def json_at(self, path: str) -> Any:
        """The value at ``path`` (``a.b[0].c``) in the JSON body; raises ``KeyError`` when absent."""
        try:
            return lookup(self.json, path)
        except JsonPathError as exc:
            raise KeyError(str(exc)) from None


async def _send(ctx: ProbeContext[HttpTarget], what: str | None = None) -> Any:
    target = ctx.target
    return await request(
        ctx, target.method, target.url, tls=TlsSettings.of(target, ctx.env), headers=reveal_headers(target.request_headers),
        content=target.body, follow_redirects=target.follow_redirects, what=what or f"request to {target.url}",
    )


async def fetch(ctx: ProbeContext[HttpTarget]) -> HttpResponse:
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
        truncated=answer.truncated,
    )


async def latency(ctx: ProbeContext[HttpTarget]) -> LatencyReading:
    """The target's response time in samples the engine vouches for (connect to last byte)."""
    target = ctx.target
    where = target.url.split("//", 1)[-1].split("/", 1)[0]

    async def one() -> Timed:
        answer = await _send(ctx)
        return Timed(answer.timing.start, answer.timing.end, answer.timing.phases())

    return await sample_latency(ctx, one, host=where, what=f"{target.method} {target.url}")
