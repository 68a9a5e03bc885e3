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
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from opsverify.engine import ProbeContext
from opsverify.errors import ProbeTimeout
from opsverify.probes.http import _base_dir, http_failure, ssl_context


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


async def send_within(
    request: Coroutine[Any, Any, httpx.Response], *, remaining: float, where: str, path: str, timeout_s: float,
    connect_step: str = "",
) -> httpx.Response:
    """Await ``request`` (to ``where``, for ``path``) for at most ``remaining`` seconds.

    A stalled answer is cut off here, without waiting for the cancelled request to clean up (that can
    take longer than the engine's grace period); httpx failures become the probe's errors, the timeouts
    named by the probe's ``timeout_s`` (and ``connect_step``, e.g. `` (TCP connect)``).
    """
    no_answer = f"{where} did not answer {path} within {timeout_s:g} s"
    task = asyncio.ensure_future(request)
    done, _ = await asyncio.wait({task}, timeout=remaining + 0.02)
    if not done:
        task.add_done_callback(_discard)
        task.cancel()
        raise ProbeTimeout(no_answer)
    try:
        return task.result()
    except httpx.HTTPError as exc:
        raise http_failure(
            exc, where=where, connect_timeout=f"connecting to {where}{connect_step} timed out after {timeout_s:g} s",
            no_answer=no_answer,
        ) from None


def _discard(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned request's outcome, so asyncio does not log it as never retrieved."""
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
            response = await send_within(
                client.request(
                    method, self.base_url + path, headers=headers, params=params, content=content, timeout=timeout
                ),
                remaining=remaining, where=self.where, path=path, timeout_s=self.ctx.timeout,
            )
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
