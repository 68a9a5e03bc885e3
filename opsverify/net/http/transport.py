"""The one HTTP request function (:func:`request`): shared httpx clients of bounded load per
target's TLS settings, the exchange timed on the wire within the probe's deadline, and the clients
prepared before the wave (:func:`prepare`).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from opsverify.config.base import Safety
from opsverify.errors import CouldNotVerify, ProbeTimeout, Unreachable
from opsverify.net.tls import TlsSettings, context_for
from opsverify.safety import of_method, permit
from opsverify.net.http.connect import DirectBackend, transport
from opsverify.net.http.answer import HttpAnswer, MAX_BODY, Timing
from opsverify.net.client_cert_verdict import certificate_verdict
from opsverify.net.http.failures import _stall, _Trace, certificate_refused, lost_tls_session, tls_alert, translate


PER_CLIENT = 32  # requests in flight through one httpx client: httpcore's pool work grows with its size


class Clients:
    """Shared httpx clients per TLS setting, each carrying at most ``PER_CLIENT`` requests at once.

    One client per request costs a pool and a transport built on the loop for every probe; one
    client for hundreds of requests makes httpcore's pool bookkeeping grow with the square of its
    size. A few shared clients of bounded load avoid both. Keep-alive is off: every request opens a
    fresh connection, so the connect and TLS phases are measured every time.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.warmed = False
        self.backend = DirectBackend()
        self._by_setting: dict[str, list[list[Any]]] = {}

    def _new(self, settings: TlsSettings) -> list[Any]:
        limits = httpx.Limits(max_connections=PER_CLIENT, max_keepalive_connections=0)
        sends = transport(context_for(self.engine, settings), limits, self.backend)
        return [httpx.AsyncClient(transport=sends, trust_env=False, follow_redirects=False), 0]

    def prepare(self, settings: TlsSettings, expected: int) -> None:
        """Build enough clients for ``expected`` requests at once (before the wave)."""
        shards = self._by_setting.setdefault(settings.key, [])
        want = min(max(1, -(-expected // PER_CLIENT)), max(1, self.engine.concurrency // PER_CLIENT + 1))
        while len(shards) < want:
            shards.append(self._new(settings))

    def acquire(self, settings: TlsSettings) -> list[Any]:
        shards = self._by_setting.setdefault(settings.key, [])
        best = min(shards, key=lambda s: s[1], default=None)
        if best is None or best[1] >= PER_CLIENT:
            best = self._new(settings)
            shards.append(best)
        best[1] += 1
        return best

    @staticmethod
    def release(shard: list[Any]) -> None:
        shard[1] -= 1

    async def aclose(self) -> None:
        for shards in self._by_setting.values():
            for client, _ in shards:
                await client.aclose()
        self._by_setting.clear()


def clients(engine: Any) -> Clients:
    """The run's shared :class:`Clients` (one per engine, closed at shutdown)."""
    found: Clients = engine.resource("net.http.clients", lambda: Clients(engine))
    return found


async def request(
    ctx: Any,
    method: str,
    url: str,
    *,
    tls: TlsSettings | None = None,
    headers: dict[str, str] | None = None,
    content: bytes | str | None = None,
    json: Any = None,
    data: Any = None,
    params: Any = None,
    follow_redirects: bool = False,
    what: str | None = None,
    budget: float | None = None,
    max_body: int = MAX_BODY,
    safety: Safety | None = None,
) -> HttpAnswer:
    """Send one request within the probe's deadline (or ``budget`` seconds of it) and describe the answer.

    Any HTTP status is returned; a failure to get one raises :class:`~opsverify.errors.Unreachable`
    or :class:`~opsverify.errors.ProbeTimeout` naming ``host:port``, the phase and ``what``.

    A method other than GET/HEAD/OPTIONS is ``mutating``: unless the probe's environment allows that,
    nothing is sent and :class:`~opsverify.errors.UnsafeSend` is raised. ``safety`` gives the class
    instead, only where the API's meaning is known to differ from its method (Vault's lease lookup is
    a read sent as PUT; a dry-run webhook delivery).
    """
    permit(ctx, safety or of_method(method).safety, f"{method.upper()} {url}")
    settings = tls or TlsSettings.of(ctx.target, ctx.env)
    where = urlsplit(url).netloc or url
    shown = what or f"{method} {urlsplit(url).path or '/'}"
    ctx.phase = f"{shown} on {where}"
    limit = ctx.remaining() if budget is None else min(budget, ctx.remaining())
    said = ctx.timeout if budget is None else budget  # what a stall message names: the timeout given
    if limit <= 0:
        raise ProbeTimeout(f"{where} got no time left for {shown} (the probe's {ctx.timeout:g} s were used up)")
    pool = clients(ctx.engine)
    shard = pool.acquire(settings)
    trace = _Trace()
    timing = Timing()
    body = _Body(content, json, data)
    task = asyncio.ensure_future(_send(shard[0], method, url, headers, body, params,
                                       follow_redirects, trace, timing, max_body, limit))
    lag0 = ctx.engine.lag.debt()
    ends = time.monotonic() + limit
    try:
        while True:
            left = min(ends + ctx.engine.lag.debt() - lag0 - time.monotonic(), ctx.hard_remaining())
            if left > 0:
                done, _ = await asyncio.wait({task}, timeout=left)
                if done:
                    break
                continue
            task.cancel()
            task.add_done_callback(_discard)
            raise _stall(trace, where, url, shown, said)
        try:
            answer: HttpAnswer = task.result()
        except httpx.HTTPError as exc:
            error = translate(exc, where=where, what=shown, limit=said, trace=trace)
            if lost_tls_session(exc, url):
                error = await _refusal_lost_in_the_race(ctx, settings, url, where, shown) or error
            raise error from None
        except ssl.SSLError as exc:  # an alert read while the body streams or closes: httpx does not wrap it
            alert = tls_alert(exc)
            if alert is not None:
                raise certificate_refused(where, shown, alert) from None
            raise Unreachable(f"{where}: TLS failed during {shown}: {exc.reason or exc}") from None
    finally:
        pool.release(shard)
        if not task.done():
            task.cancel()
    return answer


async def _refusal_lost_in_the_race(
    ctx: Any, settings: TlsSettings, url: str, where: str, shown: str
) -> CouldNotVerify | None:
    """Under TLS 1.3 a refusal of the client certificate arrives after the request was sent, and the
    reset may win: ask the server again without sending anything (:mod:`opsverify.net.client_cert_verdict`)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    context = context_for(ctx.engine, settings)
    ctx.phase = f"asking {where} for its verdict on the client certificate"
    alert = await certificate_verdict(parts.hostname or "", parts.port or 443, context,
                                      timeout=max(0.2, min(ctx.remaining(), ctx.hard_remaining())))
    return certificate_refused(where, shown, alert) if alert else None


@dataclass(frozen=True)
class _Body:
    content: bytes | str | None = None
    json: Any = None
    data: Any = None


async def _send(
    client: httpx.AsyncClient, method: str, url: str, headers: dict[str, str] | None, body: _Body,
    params: Any, follow_redirects: bool, trace: _Trace, timing: Timing, max_body: int, limit: float,
) -> HttpAnswer:
    backstop = httpx.Timeout(limit * 3 + 1)  # the caller cuts off on the lag-adjusted deadline first
    req = client.build_request(method, url, headers=headers, content=body.content, json=body.json, data=body.data,
                               params=params, timeout=backstop, extensions={"trace": trace})
    response = await client.send(req, stream=True, follow_redirects=follow_redirects)
    chunks: list[bytes] = []
    size = 0
    truncated = False
    last_chunk = None  # the exchange ends on the last byte, not after httpcore has closed the response
    try:
        async for chunk in response.aiter_bytes():
            last_chunk = time.monotonic()
            chunks.append(chunk)
            size += len(chunk)
            if size > max_body:
                truncated = True
                break
        end = last_chunk or trace.first("http11.receive_response_body.complete",
                                        "http2.receive_response_body.complete") or time.monotonic()
    finally:
        await response.aclose()
    start = trace.first("connection.connect_tcp.started", "http11.send_request_headers.started",
                        "http2.send_request_headers.started") or end
    first_byte = trace.first("http11.receive_response_headers.complete",
                             "http2.receive_response_headers.complete") or end
    sent = trace.first("http11.send_request_body.complete", "http2.send_request_body.complete") or start
    timing.start, timing.end = start, end
    timing.connect_ms = trace.span("connection.connect_tcp")
    timing.tls_ms = trace.span("connection.start_tls")
    timing.processing_ms = max(0.0, (first_byte - sent) * 1000)
    timing.transfer_ms = max(0.0, (end - first_byte) * 1000)
    return HttpAnswer(
        url=str(response.url),
        status=response.status_code,
        headers={k.lower(): v for k, v in response.headers.items()},
        body=b"".join(chunks)[:max_body],
        timing=timing,
        http_version=response.http_version,
        encoding=response.encoding or "utf-8",
        truncated=truncated,
    )


def _discard(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


# -- before the wave -------------------------------------------------------------------------------
@dataclass
class Preparation:
    """What the HTTP-speaking probes of a run need ready before the wave: TLS settings and counts."""

    settings: dict[str, tuple[TlsSettings, int]] = field(default_factory=dict)

    def add(self, settings: TlsSettings) -> None:
        known = self.settings.get(settings.key)
        self.settings[settings.key] = (settings, (known[1] if known else 0) + 1)


async def prepare(engine: Any, needs: Preparation) -> None:
    """Build the shared TLS contexts and clients, and run one request through httpx on loopback.

    The first request of a process imports and initialises parts of httpx, httpcore, anyio and h11
    (tens of milliseconds); done here, on a throwaway local server, it is not billed to a probe.
    """
    pool = clients(engine)
    for settings, count in needs.settings.values():
        try:
            pool.prepare(settings, count)
        except CouldNotVerify:
            pass  # a CA bundle that does not load: the probes of that target report it
    if not pool.warmed:
        pool.warmed = True
        first = next(iter(needs.settings.values()), (TlsSettings(verify=False), 0))[0]
        await _first_request(engine, first)


async def _first_request(engine: Any, settings: TlsSettings) -> None:
    """One plain-HTTP request on loopback through a client of ``settings`` (one the wave will use, so
    no client is built only to be thrown away)."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        shard = clients(engine).acquire(settings)
    except CouldNotVerify:
        shard = clients(engine).acquire(TlsSettings(verify=False))
    try:
        await asyncio.wait_for(shard[0].get(f"http://127.0.0.1:{port}/", extensions={"trace": _Trace()}), 5)
    except (httpx.HTTPError, asyncio.TimeoutError, OSError):
        pass
    finally:
        Clients.release(shard)
        server.close()
        await server.wait_closed()
