"""The API-edge probes' view of the network layer (rate limit, auth, webhooks, WebSocket).

A probe binds a target's TLS settings once (:func:`client`) and sends requests through :func:`call`,
which is :func:`opsverify.net.http.request`: timed on the wire, bounded by the probe's deadline,
errors translated in one table. Every answer is an :class:`~opsverify.net.http.HttpAnswer`.

Example::

    async with client(ctx, target) as http:
        answer = await call(ctx, http, "GET", target.url("/auth/me"), what="GET /auth/me")
        answer.status
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opsverify.engine import ProbeContext
from opsverify.net.http import HttpAnswer, request
from opsverify.net.tls import TlsSettings


@dataclass(frozen=True)
class Endpoint:
    """A target's TLS settings, bound once for the requests of one probe."""

    tls: TlsSettings

    async def __aenter__(self) -> Endpoint:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


def client(ctx: ProbeContext[Any], target: Any) -> Endpoint:
    """The target's TLS settings for :func:`call` (the HTTP clients themselves are shared per run)."""
    return Endpoint(TlsSettings.of(target, ctx.env))


def where(url: str) -> str:
    """``host:port`` of ``url``, for messages."""
    return urlsplit(url).netloc or url


async def call(
    ctx: ProbeContext[Any], http: Endpoint, method: str, url: str, *, what: str, **kwargs: Any
) -> HttpAnswer:
    """Send one request; connection problems raise ``Unreachable``, stalls ``ProbeTimeout``."""
    return await request(ctx, method, url, tls=http.tls, what=what, **kwargs)


def snippet(answer: HttpAnswer, limit: int = 120) -> str:
    """The start of an answer's body, on one line (for messages)."""
    return answer.snippet(limit)
