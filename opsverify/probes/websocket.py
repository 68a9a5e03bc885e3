"""WebSocket probes (library ``websockets``): one synthetic exchange, and the connection-cap test.

What the checks exist to catch is returned as data: a handshake the server refuses (HTTP 401, 503),
a wrong or missing reply, a close that is not 1000, a cap that does not hold. Errors are for "could
not see": refused TCP connection, TLS failure, a handshake that never completes
(:class:`~opsverify.errors.Unreachable`, :class:`~opsverify.errors.ProbeTimeout`).

Example::

    exchange = await exchange(ctx)     # ctx.target is a WebSocketTarget
    exchange.accepted, exchange.reply, exchange.reply_ms, exchange.close_code
    cap = await connection_cap(ctx)
    cap.refused_at, cap.refusal
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from opsverify.config.base import Safety
from opsverify.config.websocket import WebSocketTarget
from opsverify.engine import ProbeContext
from opsverify.errors import ProbeTimeout, Unreachable
from opsverify.lazy import lazy_module
from opsverify.net.http import reveal_headers
from opsverify.net.sampling import LatencyReading, Timed, sample_latency
from opsverify.net.tls import tls_context
from opsverify.probes.api_client import where
from opsverify.safety import permit

if TYPE_CHECKING:
    import websockets.asyncio.client as ws_client
    import websockets.exceptions as ws_errors
    from websockets.asyncio.client import ClientConnection
    from websockets.exceptions import ConnectionClosed, InvalidStatus
else:
    ws_client = lazy_module("websockets.asyncio.client")
    ws_errors = lazy_module("websockets.exceptions")

CLOSE_WAIT_S = 2.0  # how long the close handshake may take before the connection is dropped
REFUSAL_GRACE_S = 0.5  # how long the extra connection of the cap test is watched for a server close


@dataclass
class WsExchange:
    """One connect - send - reply - close round.

    ``accepted`` is false when the server answered the handshake with an HTTP status instead of
    switching protocols (``status``, ``refusal``). ``reply`` is ``None`` when nothing came back
    (``reply_problem`` says why).
    """

    url: str
    accepted: bool
    status: int | None = None
    refusal: str = ""
    connect_ms: float = 0.0
    sent: str = ""
    reply: str | None = None
    reply_ms: float | None = None
    reply_problem: str = ""
    close_code: int | None = None
    close_reason: str = ""
    sent_at: float = 0.0
    replied_at: float = 0.0

    @property
    def handshake(self) -> str:
        """The handshake outcome in words (for messages)."""
        if self.accepted:
            return "101 Switching Protocols"
        return f"HTTP {self.status}" + (f" ({self.refusal})" if self.refusal else "")


@dataclass
class WsCapTest:
    """Connections opened toward ``cap + 1``: when (if at all) the server refused one, and how."""

    cap: int
    opened: int
    refused_at: int | None
    refusal: str = ""


def _url(target: WebSocketTarget) -> str:
    if target.token is None:
        return target.url
    parts = urlsplit(target.url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(target.token_param, target.token.reveal().strip())]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _ssl(ctx: ProbeContext[WebSocketTarget], target: WebSocketTarget) -> ssl.SSLContext | None:
    return tls_context(ctx, target.ca_bundle, target.verify_tls) if target.url.startswith("wss://") else None


def _shown(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat[:limit] + ("…" if len(flat) > limit else "")


def _close_text(exc: ConnectionClosed) -> str:
    frame = exc.rcvd
    if frame is None:
        return "the connection was dropped without a close frame (1006)"
    return f"close code {frame.code}" + (f" ({frame.reason})" if frame.reason else "")


async def _open(ctx: ProbeContext[WebSocketTarget], target: WebSocketTarget, url: str, timeout: float) -> ClientConnection:
    """Complete the handshake; raises ``InvalidStatus`` for an HTTP refusal, opsverify errors otherwise."""
    host = where(target.url)
    try:
        return await ws_client.connect(
            url,
            additional_headers=reveal_headers(target.headers),
            ssl=_ssl(ctx, target),
            open_timeout=timeout,
            close_timeout=CLOSE_WAIT_S,
            ping_interval=None,
            proxy=None,
            compression=None,
        )
    except ws_errors.InvalidStatus:
        raise
    except (TimeoutError, asyncio.TimeoutError):
        raise ProbeTimeout(f"WebSocket handshake with {host} did not complete within {timeout:g} s") from None
    except ssl.SSLCertVerificationError as exc:
        raise Unreachable(f"cannot connect to {host}: TLS certificate not trusted ({exc.verify_message})") from None
    except ConnectionRefusedError:
        raise Unreachable(f"cannot connect to {host}: connection refused") from None
    except OSError as exc:
        raise Unreachable(f"cannot connect to {host}: {exc.strerror or exc}") from None
    except ws_errors.InvalidURI as exc:
        raise Unreachable(f"{target.url} is not a usable WebSocket URL: {exc}") from None
    except ws_errors.InvalidHandshake as exc:
        raise Unreachable(f"WebSocket handshake with {host} failed: {_shown(str(exc))}") from None


def _refusal(exc: InvalidStatus) -> tuple[int, str]:
    response = exc.response
    body = bytes(response.body or b"").decode("utf-8", errors="replace")
    return response.status_code, _shown(body, 100)


async def exchange(ctx: ProbeContext[WebSocketTarget]) -> WsExchange:
    """Connect, send ``target.send``, wait for one reply, close with 1000; describe each step."""
    target = ctx.target
    url = _url(target)
    ctx.phase = f"WebSocket handshake with {where(target.url)}"
    started = time.monotonic()
    try:
        ws = await _open(ctx, target, url, ctx.left(reserve=0.2, floor=0.1))
    except ws_errors.InvalidStatus as exc:
        status, body = _refusal(exc)
        return WsExchange(target.url, accepted=False, status=status, refusal=body)
    result = WsExchange(target.url, accepted=True, connect_ms=(time.monotonic() - started) * 1000, sent=target.send)
    try:
        ctx.phase = f"waiting for the reply from {where(target.url)}"
        sent_at = time.monotonic()
        await ws.send(target.send)
        wait = ctx.left(reserve=0.2 + CLOSE_WAIT_S, floor=0.1)  # leave time for the close handshake
        try:
            message = await asyncio.wait_for(ws.recv(), wait)
            result.replied_at = time.monotonic()
            result.sent_at = sent_at
            result.reply_ms = (result.replied_at - sent_at) * 1000
            result.reply = message if isinstance(message, str) else bytes(message).decode("utf-8", "replace")
        except (TimeoutError, asyncio.TimeoutError):
            result.reply_problem = f"no reply within {wait:.1f} s"
        except ws_errors.ConnectionClosed as exc:
            result.reply_problem = f"the server closed the connection before replying ({_close_text(exc)})"
    finally:
        ctx.phase = f"closing the WebSocket to {where(target.url)}"
        await ws.close()
    result.close_code = ws.close_code
    result.close_reason = ws.close_reason or ""
    return result


async def reply_latency(ctx: ProbeContext[WebSocketTarget]) -> LatencyReading:
    """The reply latency (message sent to reply received) in samples the engine vouches for.

    Each sample is a full exchange of its own. After the target's synthetic exchange: when that one
    was refused or got no reply, there is nothing to time and the reading is empty (the exchange's
    own checks say why).
    """
    target = ctx.target
    first: WsExchange = await ctx.depend("websocket_exchange")
    reading = LatencyReading(what=f"the reply from {target.url}", wanted=0)
    if not first.accepted or first.reply_ms is None:
        return reading

    async def one() -> Timed:
        got = await exchange(ctx)
        if not got.accepted or got.reply_ms is None:
            raise ProbeTimeout(f"{where(target.url)}: no reply to time ({got.reply_problem or got.handshake})")
        return Timed(got.sent_at, got.replied_at)

    return await sample_latency(ctx, one, host=where(target.url), what=f"the reply from {target.url}")


async def connection_cap(ctx: ProbeContext[WebSocketTarget]) -> WsCapTest:
    """Open connections one by one up to ``connection_cap + 1``, holding them; then close them all.

    A refusal is an HTTP status on the handshake, a TCP refusal after earlier connections were
    accepted, or the server closing the last connection at once (watched for half a second). Runs
    after the target's synthetic exchange (``ctx.depend``), never beside it.
    """
    target = ctx.target
    permit(ctx, Safety.disruptive, f"connections up to the cap of {target.url}")
    # The synthetic exchange goes first: while this test holds the cap, it would be refused too. An
    # unreachable endpoint errors here with the exchange's cause; a refused handshake is its check's business.
    await ctx.depend("websocket_exchange")
    await ctx.after("websocket_reply_latency")  # its samples would be refused by the held connections
    cap = int(target.connection_cap or 0)
    url = _url(target)
    opened: list[ClientConnection] = []
    refused_at: int | None = None
    refusal = ""
    try:
        for attempt in range(1, cap + 2):
            ctx.phase = f"opening WebSocket connection {attempt} of {cap + 1}"
            try:
                opened.append(await _open(ctx, target, url, ctx.timeout))
            except ws_errors.InvalidStatus as exc:
                status, body = _refusal(exc)
                refused_at, refusal = attempt, f"handshake answered HTTP {status}" + (f" ({body})" if body else "")
                break
            except Unreachable as exc:
                if not opened:
                    raise
                refused_at, refusal = attempt, str(exc)
                break
        if refused_at is None and opened:
            ctx.phase = "watching the extra connection for a close from the server"
            try:
                await asyncio.wait_for(opened[-1].recv(), REFUSAL_GRACE_S)
            except (TimeoutError, asyncio.TimeoutError):
                pass
            except ws_errors.ConnectionClosed as exc:
                refused_at, refusal = cap + 1, f"accepted, then closed by the server ({_close_text(exc)})"
    finally:
        ctx.phase = f"closing {len(opened)} WebSocket connections"
        await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    return WsCapTest(cap=cap, opened=len(opened), refused_at=refused_at, refusal=refusal)
