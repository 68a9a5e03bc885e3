"""One HTTP call of a probe against a web API, bounded by the probe's timeout, errors translated.

Shared by the probes of the ``pact:``, ``api_tokens:`` and ``telemetry:`` sections (and usable by any
probe that needs "send this request, give me status, headers, body and latency"). A connection
refused is :class:`~opsverify.errors.Unreachable`, a stall is :class:`~opsverify.errors.ProbeTimeout`
naming the address and the path; an answer of *any* HTTP status is returned as data - the caller
decides whether 401 is the fault its check exists to catch or a sign it could not look.

Example::

    api = WebApi(ctx, base_url="https://pact-broker.example.com", ca_bundle=None, verify_tls=True)
    answer = await api.call("GET", "/diagnostic/status/heartbeat", headers={"accept": "application/hal+json"})
    answer.status, answer.json, answer.elapsed_ms
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from opsverify.engine import ProbeContext
from opsverify.errors import ProbeTimeout, Unreachable
from opsverify.probes.http import _base_dir, _connect_reason, _short, ssl_context


@dataclass
class Answer:
    """What the API answered: status, headers (lower-case names), raw body, parsed JSON, latency."""

    status: int
    headers: dict[str, str]
    body: bytes
    json: Any
    elapsed_ms: float

    @property
    def text(self) -> str:
        """The body as text, cut to one short line (for messages)."""
        return " ".join(self.body.decode("utf-8", "replace").split())[:200]


def where(url: str) -> str:
    """``host:port`` of a URL, as messages name the system."""
    return urlsplit(url).netloc or url


def _discard(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class WebApi:
    """Requests of one probe against one base URL, all within one deadline (the probe's timeout)."""

    def __init__(
        self, ctx: ProbeContext[Any], *, base_url: str, ca_bundle: str | None = None, verify_tls: bool = True
    ) -> None:
        self.ctx = ctx
        self.base_url = base_url.rstrip("/")
        self.where = where(self.base_url)
        self.deadline = time.monotonic() + ctx.timeout
        base_dir = _base_dir(ctx)
        self._ssl_key = f"webapi-ssl:{ca_bundle}:{verify_tls}:{base_dir}"
        self._ssl = (ca_bundle, verify_tls, base_dir)

    def _client(self) -> httpx.AsyncClient:
        ca_bundle, verify_tls, base_dir = self._ssl
        verify = self.ctx.resource(self._ssl_key, lambda: ssl_context(ca_bundle, verify_tls, base_dir))
        return httpx.AsyncClient(verify=verify, trust_env=False, follow_redirects=False)

    async def call(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        params: Any = None,
        content: bytes | None = None,
    ) -> Answer:
        """``method base_url+path``; any HTTP status is returned, network failures raise."""
        self.ctx.phase = f"{method} {path} on {self.where}"
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ProbeTimeout(f"{self.where} did not answer {path} within {self.ctx.timeout:g} s")
        timeout = httpx.Timeout(remaining + 1.0, connect=remaining)
        async with self._client() as client:
            started = time.perf_counter()
            task = asyncio.ensure_future(
                client.request(
                    method, self.base_url + path, headers=headers, params=params, content=content, timeout=timeout
                )
            )
            done, _ = await asyncio.wait({task}, timeout=remaining + 0.02)
            if not done:
                task.add_done_callback(_discard)
                task.cancel()
                raise ProbeTimeout(f"{self.where} did not answer {path} within {self.ctx.timeout:g} s")
            try:
                response = task.result()
            except httpx.ConnectTimeout:
                raise ProbeTimeout(f"connecting to {self.where} timed out after {self.ctx.timeout:g} s") from None
            except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout):
                raise ProbeTimeout(f"{self.where} did not answer {path} within {self.ctx.timeout:g} s") from None
            except httpx.ConnectError as exc:
                raise Unreachable(f"cannot connect to {self.where}: {_connect_reason(exc)}") from None
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                raise Unreachable(f"{self.where} closed the connection: {_short(exc)}") from None
            except httpx.HTTPError as exc:
                raise Unreachable(f"{self.where}: {_short(exc)}") from None
            elapsed_ms = (time.perf_counter() - started) * 1000
        try:
            parsed = response.json() if response.content else None
        except ValueError:
            parsed = None
        return Answer(
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=response.content,
            json=parsed,
            elapsed_ms=elapsed_ms,
        )
