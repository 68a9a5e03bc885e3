"""HTTP(S) probe: one request per target, with its latency, status, headers and body.

Library errors are translated here, at the boundary: a refused connection, a DNS failure or a TLS
verification failure is :class:`~opsverify.errors.Unreachable`; a stall is
:class:`~opsverify.errors.ProbeTimeout` naming the phase.

Example::

    response = await fetch(ctx)          # ctx.target is an HttpTarget
    response.status, response.latency_ms, response.json_at("checks[0].healthy")
"""

from __future__ import annotations

import json
import os
import ssl
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from opsverify.config.http import HeaderValue, HttpTarget
from opsverify.engine import ProbeContext
from opsverify.errors import ProbeTimeout, Unreachable, UnexpectedResponse
from opsverify.jsonpath import JsonPathError, lookup

MAX_BODY = 256 * 1024


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


def ssl_context(ca_bundle: str | None, verify: bool, base_dir: str | None = None) -> ssl.SSLContext:
    """A client TLS context: the system store, or ``ca_bundle``, or no verification."""
    if not verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if ca_bundle:
        path = Path(os.path.expandvars(ca_bundle))
        if not path.is_absolute() and base_dir:
            path = Path(base_dir) / path
        try:
            return ssl.create_default_context(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise Unreachable(f"CA bundle {path} cannot be loaded: {exc}") from None
    return ssl.create_default_context()


def _client(ctx: ProbeContext[Any], target: HttpTarget) -> httpx.AsyncClient:
    """A client of its own for this probe, with a TLS context shared per run.

    One client per probe, not one shared pool: httpcore's pool slows down sharply with hundreds of
    concurrent requests (300 requests of 100 ms took 6 s through one pool, 0.9 s through one client
    each), and a fresh connection per probe is what a real client of the endpoint pays anyway.
    Building an SSL context is the expensive part, so that one is shared.
    """
    base_dir = _base_dir(ctx)
    verify = ctx.resource(
        f"ssl:{target.ca_bundle}:{target.verify_tls}:{base_dir}",
        lambda: ssl_context(target.ca_bundle, target.verify_tls, base_dir),
    )
    return httpx.AsyncClient(verify=verify, follow_redirects=target.follow_redirects, trust_env=False)


def _base_dir(ctx: ProbeContext[Any]) -> str | None:
    source = getattr(ctx.env, "source", "")
    return str(Path(source).resolve().parent) if source else None


def _request_headers(target: HttpTarget) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in target.request_headers.items():
        if isinstance(value, HeaderValue):
            headers[name] = value.prefix + value.reveal().strip()
        else:
            headers[name] = value
    return headers


async def fetch(ctx: ProbeContext[Any]) -> HttpResponse:
    """Send the target's request once and describe the answer."""
    target: HttpTarget = ctx.target
    headers = _request_headers(target)
    where = _where(target.url)
    timeout = httpx.Timeout(ctx.timeout)
    ctx.phase = f"request to {where}"
    started = time.monotonic()
    try:
        async with _client(ctx, target) as client:
            response = await client.request(
                target.method, target.url, headers=headers, content=target.body, timeout=timeout
            )
            body_bytes = response.content[:MAX_BODY]
    except httpx.HTTPError as exc:
        step = "TCP connect and TLS handshake" if target.url.startswith("https") else "TCP connect"
        raise http_failure(
            exc, where=where, connect_timeout=f"connecting to {where} ({step}) timed out after {ctx.timeout:g} s",
            no_answer=f"{where} sent no response within {ctx.timeout:g} s",
        ) from None
    latency_ms = (time.monotonic() - started) * 1000
    return HttpResponse(
        url=str(response.url),
        status=response.status_code,
        latency_ms=latency_ms,
        headers={k.lower(): v for k, v in response.headers.items()},
        body=body_bytes.decode(response.encoding or "utf-8", errors="replace"),
        http_version=response.http_version,
        redirect_location=response.headers.get("location"),
    )


def _where(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _root_cause(exc: BaseException) -> BaseException:
    seen = exc
    for _ in range(10):
        nxt = seen.__cause__ or seen.__context__
        if nxt is None:
            break
        seen = nxt
    return seen


def _connect_reason(exc: httpx.ConnectError) -> str:
    root = _root_cause(exc)
    if isinstance(root, ConnectionRefusedError):
        return "connection refused"
    text = _short(exc) if not isinstance(root, OSError) else f"{_short(exc)} ({_short(root)})"
    lowered = text.lower()
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        detail = text.split("certificate verify failed:")[-1].strip(" ()_")
        return f"TLS certificate not trusted ({detail.split('(')[0].strip()})"
    if "name or service not known" in lowered or "temporary failure in name resolution" in lowered:
        return f"DNS lookup failed ({text})"
    if "connection refused" in lowered:
        return "connection refused"
    return text


def http_failure(exc: httpx.HTTPError, *, where: str, connect_timeout: str, no_answer: str) -> ProbeTimeout | Unreachable:
    """The probe error for a request to ``where`` that httpx could not complete (raise it ``from None``).

    ``connect_timeout`` and ``no_answer`` are the messages for a connect and an answer that timed out;
    a refused or broken connection names ``where`` and the cause in one line.
    """
    if isinstance(exc, httpx.ConnectTimeout):
        return ProbeTimeout(connect_timeout)
    if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout)):
        return ProbeTimeout(no_answer)
    if isinstance(exc, httpx.ConnectError):
        return Unreachable(f"cannot connect to {where}: {_connect_reason(exc)}")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return Unreachable(f"{where} closed the connection: {_short(exc)}")
    return Unreachable(f"{where}: {_short(exc)}")
