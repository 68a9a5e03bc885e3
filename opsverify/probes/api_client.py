"""Plain HTTP calls for the API-edge probes (rate limit, auth, webhooks), errors translated once.

A probe gets a client with the target's TLS settings (the SSL context is shared per run) and sends
requests through :func:`call`, which turns library errors into :mod:`opsverify.errors` types with a
one-line cause (refused, TLS not trusted, timeout naming what was being sent).

Example::

    async with client(ctx, target) as http:
        response = await call(ctx, http, "GET", target.url("/auth/me"), what="GET /auth/me")
        response.status_code
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

import httpx

from opsverify.config.http import HeaderValue
from opsverify.engine import ProbeContext
from opsverify.errors import ProbeTimeout, Unreachable
from opsverify.probes.http import _base_dir, _connect_reason, _short, ssl_context


def tls_context(ctx: ProbeContext[Any], ca_bundle: str | None, verify_tls: bool) -> ssl.SSLContext:
    """The client TLS context for these settings, built once per run and shared."""
    base_dir = _base_dir(ctx)
    context: ssl.SSLContext = ctx.resource(
        f"ssl:{ca_bundle}:{verify_tls}:{base_dir}", lambda: ssl_context(ca_bundle, verify_tls, base_dir)
    )
    return context


def client(ctx: ProbeContext[Any], target: Any) -> httpx.AsyncClient:
    """A client of this probe's own (see :mod:`opsverify.probes.http` for why not a shared pool)."""
    verify = tls_context(ctx, getattr(target, "ca_bundle", None), getattr(target, "verify_tls", True))
    return httpx.AsyncClient(verify=verify, follow_redirects=False, trust_env=False, timeout=ctx.timeout)


def header_values(headers: dict[str, str | HeaderValue]) -> dict[str, str]:
    """Request headers with secret references revealed (the values are registered for redaction)."""
    return {name: (v.prefix + v.reveal().strip()) if isinstance(v, HeaderValue) else v for name, v in headers.items()}


def where(url: str) -> str:
    """``host:port`` of ``url``, for messages."""
    return urlsplit(url).netloc or url


async def call(
    ctx: ProbeContext[Any], http: httpx.AsyncClient, method: str, url: str, *, what: str, **kwargs: Any
) -> httpx.Response:
    """Send one request; connection problems raise ``Unreachable``, stalls ``ProbeTimeout``."""
    ctx.phase = what
    host = where(url)
    try:
        return await http.request(method, url, **kwargs)
    except httpx.ConnectTimeout:
        raise ProbeTimeout(f"connecting to {host} timed out after {ctx.timeout:g} s ({what})") from None
    except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout):
        raise ProbeTimeout(f"{host} sent no response within {ctx.timeout:g} s ({what})") from None
    except httpx.ConnectError as exc:
        raise Unreachable(f"cannot connect to {host}: {_connect_reason(exc)}") from None
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        raise Unreachable(f"{host} closed the connection ({what}): {_short(exc)}") from None
    except httpx.HTTPError as exc:
        raise Unreachable(f"{host} ({what}): {_short(exc)}") from None


def snippet(response: httpx.Response, limit: int = 120) -> str:
    """The start of a response body, on one line (for messages)."""
    text = " ".join(response.text[:limit * 2].split())
    return text[:limit] + ("…" if len(text) > limit else "")
