"""The one HTTP request function of every HTTP-speaking probe: timed on the wire, errors in one table.

:func:`request` sends one request with httpx and returns an :class:`HttpAnswer` whatever its status
(a probe decides whether 401 is the fault it looks for or a sign it cannot look). It

- builds nothing inside the timed region: TLS contexts and clients are shared per run and setting
  (:mod:`opsverify.net.tls`, :class:`Clients`), built before the wave by :func:`prepare`;
- times the network only, from the start of the TCP connect to the last byte of the answer, with the
  phases blackbox_exporter reports as ``probe_http_duration_seconds``: ``connect`` (DNS + TCP),
  ``tls``, ``processing`` (request sent → first byte of the answer) and ``transfer`` (first → last
  byte), from httpcore's trace events; every request opens a fresh connection, as a new client of the
  service would;
- bounds the request by the probe's deadline (``ctx.remaining()``, which does not count the time the
  checker's own loop ran late), and names the phase a stall was in;
- translates every httpx failure in one table, :func:`translate`.

Example::

    answer = await request(ctx, "GET", "https://gateway/healthz", tls=TlsSettings.of(target, ctx.env))
    answer.status, answer.timing.total_ms, answer.json
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import json as jsonlib
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import httpx

from opsverify.config.base import Safety
from opsverify.config.secrets import REDACTOR
from opsverify.errors import CouldNotVerify, ProbeTimeout, Unreachable, UnexpectedResponse
from opsverify.net.tls import TlsSettings, context_for
from opsverify.safety import of_method, permit

MAX_BODY = 256 * 1024
PER_CLIENT = 32  # requests in flight through one httpx client: httpcore's pool work grows with its size


@dataclass
class Timing:
    """Where one request's time went, in milliseconds, and when it was on the wire (monotonic s)."""

    start: float = 0.0
    end: float = 0.0
    connect_ms: float = 0.0
    tls_ms: float = 0.0
    processing_ms: float = 0.0
    transfer_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        """Connect start to last byte."""
        return (self.end - self.start) * 1000

    def phases(self) -> dict[str, float]:
        """The phases, rounded, for ``measured`` records."""
        return {
            "connect_ms": round(self.connect_ms, 2),
            "tls_ms": round(self.tls_ms, 2),
            "processing_ms": round(self.processing_ms, 2),
            "transfer_ms": round(self.transfer_ms, 2),
        }


@dataclass
class HttpAnswer:
    """What one request saw. ``headers`` keys are lower-case; ``body`` is cut at ``MAX_BODY`` bytes
    (``truncated`` says it was)."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    timing: Timing
    http_version: str = "HTTP/1.1"
    encoding: str = "utf-8"
    truncated: bool = False  # the body went on past ``max_body`` bytes: only its start was read

    @property
    def latency_ms(self) -> float:
        """Connect start to last byte, in milliseconds."""
        return self.timing.total_ms

    @cached_property
    def text(self) -> str:
        return self.body.decode(self.encoding or "utf-8", errors="replace")

    @cached_property
    def json(self) -> Any:
        """The body parsed as JSON; raises :class:`UnexpectedResponse` when it is not JSON."""
        try:
            return jsonlib.loads(self.text)
        except ValueError:
            snippet = " ".join(self.text[:80].split())
            raise UnexpectedResponse(f"body is not JSON (starts with {snippet!r})") from None

    def json_or_none(self) -> Any:
        """The body parsed as JSON, or ``None`` when it is empty or not JSON."""
        try:
            return jsonlib.loads(self.text) if self.body else None
        except ValueError:
            return None

    def snippet(self, limit: int = 120) -> str:
        """The start of the body, on one line (for messages)."""
        text = " ".join(self.text[: limit * 2].split())
        return text[:limit] + ("…" if len(text) > limit else "")


def reveal_headers(headers: dict[str, Any]) -> dict[str, str]:
    """Request headers with their secret references (``HeaderValue``) revealed after their prefix;
    revealed values are registered for redaction."""
    shown: dict[str, str] = {}
    for name, value in headers.items():
        if isinstance(value, str):
            shown[name] = value
            continue
        secret = value.reveal().strip()
        user = getattr(value, "basic_user", None)
        if user is not None:
            pair = f"{user}:{secret}"
            REDACTOR.add(pair)  # and its base64: the header itself
            shown[name] = (value.prefix or "Basic ") + base64.b64encode(pair.encode()).decode()
        else:
            shown[name] = value.prefix + secret
        REDACTOR.add(shown[name])  # the whole header value too ("Bearer <token>") and its encodings
    return shown


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
        self._by_setting: dict[str, list[list[Any]]] = {}

    def _new(self, settings: TlsSettings) -> list[Any]:
        verify = context_for(self.engine, settings)
        limits = httpx.Limits(max_connections=PER_CLIENT, max_keepalive_connections=0)
        return [httpx.AsyncClient(verify=verify, limits=limits, trust_env=False, follow_redirects=False), 0]

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


class _Trace:
    """httpcore trace events of one request, timestamped: the phases and where a stall stopped."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.last = ""

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if name.endswith(".started"):
            self.at.setdefault(name, now)  # the first connect of a redirect chain starts the clock
        else:
            self.at[name] = now
        self.last = name

    def first(self, *names: str) -> float | None:
        return next((self.at[n] for n in names if n in self.at), None)

    def span(self, phase: str) -> float:
        begin, end = self.at.get(f"{phase}.started"), self.at.get(f"{phase}.complete")
        return (end - begin) * 1000 if begin is not None and end is not None else 0.0

    def stalled_in(self, tls: bool) -> str:
        """The phase a request that did not finish was in: tcp, tls, answer or body."""
        last = self.last
        if last in ("", "connection.connect_tcp.started"):
            return "tcp"
        if last == "connection.start_tls.started" or (tls and last == "connection.connect_tcp.complete"):
            return "tls"
        if "receive_response_body" in last or last.endswith("receive_response_headers.complete"):
            return "body"
        return "answer"


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
            raise translate(exc, where=where, what=shown, limit=said, trace=trace) from None
    finally:
        pool.release(shard)
        if not task.done():
            task.cancel()
    return answer


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
    try:
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > max_body:
                truncated = True
                break
        end = time.monotonic()
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


def _stall(trace: _Trace, where: str, url: str, what: str, limit: float) -> ProbeTimeout:
    tls = url.startswith("https")
    phase = trace.stalled_in(tls)
    if phase == "tcp":
        step = "TCP connect and TLS handshake" if tls else "TCP connect"
        return ProbeTimeout(f"connecting to {where} ({step}) timed out after {limit:.3g} s ({what})")
    if phase == "tls":
        return ProbeTimeout(f"connecting to {where} (TLS handshake) timed out after {limit:.3g} s ({what})")
    if phase == "body":
        return ProbeTimeout(f"{where} stopped sending its answer's body: not complete within {limit:.3g} s ({what})")
    return ProbeTimeout(f"{where} sent no response within {limit:.3g} s ({what})")


# -- the one error table ---------------------------------------------------------------------------
def short(exc: BaseException) -> str:
    """An exception's text on one line, at most 200 characters."""
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


def tls_alert(exc: BaseException) -> str | None:
    """The TLS alert a server sent (``certificate expired``, ``unknown ca``), found along ``exc``'s causes."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        reason = str(getattr(seen, "reason", "") or "")
        if isinstance(seen, ssl.SSLError) and "ALERT" in reason.upper():
            return reason.lower().split("alert_", 1)[-1].replace("_", " ")
        seen = seen.__cause__ or seen.__context__
    return None


def connect_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words (refused, TLS not trusted, DNS, ...)."""
    root = _root_cause(exc)
    if isinstance(root, ConnectionRefusedError):
        return "connection refused"
    text = short(exc) if not isinstance(root, OSError) or root is exc else f"{short(exc)} ({short(root)})"
    lowered = text.lower()
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        detail = text.split("certificate verify failed:")[-1].strip(" ()_")
        return f"TLS certificate not trusted ({detail.split('(')[0].strip()})"
    if "name or service not known" in lowered or "temporary failure in name resolution" in lowered:
        return f"DNS lookup failed ({text})"
    if "connection refused" in lowered:
        return "connection refused"
    return text


def translate(exc: httpx.HTTPError, *, where: str, what: str, limit: float, trace: _Trace | None = None) -> CouldNotVerify:
    """The probe error for a request to ``where`` that httpx could not complete (raise it ``from None``)."""
    if isinstance(exc, httpx.TimeoutException):
        return _stall(trace or _Trace(), where, str(exc.request.url) if _has_request(exc) else "", what, limit)
    if isinstance(exc, httpx.ConnectError):
        return Unreachable(f"cannot connect to {where}: {connect_reason(exc)}")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        alert = tls_alert(exc)
        if alert is not None:
            return Unreachable(f"{where} refused the TLS session with the alert '{alert}' ({what}): "
                               "it demands a client certificate it trusts; set client_cert / client_key "
                               "to one that is current and issued by its client CA")
        return Unreachable(f"{where} closed the connection ({what}): {short(exc)}")
    if isinstance(exc, httpx.TooManyRedirects):
        return UnexpectedResponse(f"{where}: too many redirects ({what})")
    return Unreachable(f"{where} ({what}): {short(exc)}")


def _has_request(exc: httpx.HTTPError) -> bool:
    try:
        exc.request  # noqa: B018 - httpx raises RuntimeError when the error has no request
    except RuntimeError:
        return False
    return True


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
