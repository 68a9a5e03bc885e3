"""NATS connections: the probe's TLS context, one connection with one credential and the
asynchronous errors it saw (:class:`ErrorLog`), the connect probe, and :func:`guarded` requests that
stop as soon as the server denies their publish.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

from opsverify.config.nats import NatsCredentials, NatsTarget
from opsverify.engine import ProbeContext
from opsverify.errors import NatsAuthRejected, NatsPublishDenied, ProbeTimeout, Unreachable
from opsverify.lazy import lazy_module
from opsverify.client_certs import certificate_alert, expiry_hint
from opsverify.net.client_cert_verdict import certificate_verdict
from opsverify.net.tls import base_dir, ssl_context
from opsverify.probes.nats.credentials import load_material, Material

if TYPE_CHECKING:
    import nats
    import nats.errors
    import nats.js.errors
    from nats.aio.client import Client
else:
    nats = lazy_module("nats")  # nats.errors and nats.js.errors are imported by the package itself


PROBE_TOKEN = "opsverify"
NO_SUCH_STREAM = "opsverify-probe-no-stream"  # Nats-Expected-Stream: keeps probe messages out of streams
SETTLE_S = 0.1  # after a flush, how long to keep listening for late permission violations
DENIAL_WAIT_S = 1.0  # at most this long for the violations of subjects that must be denied
CLOSE_S = 1.0
Direction = Literal["publish", "subscribe"]


def _not_nats_tls_eof_noise(record: logging.LogRecord) -> bool:
    """asyncio warns on every TLS close of a nats-py connection (its protocol's ``eof_received``
    returns True); the warning says nothing about the system, so it is dropped."""
    return not str(record.msg).startswith("returning true from eof_received()")


if _not_nats_tls_eof_noise not in logging.getLogger("asyncio").filters:
    logging.getLogger("asyncio").addFilter(_not_nats_tls_eof_noise)


T = TypeVar("T")
_VIOLATION = re.compile(r'permissions violation for (publish|subscription) to "([^"]+)"', re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def _where(target: NatsTarget) -> str:
    return ", ".join(target.servers)


DEFAULT_PORT = 4222


def _first_server(target: NatsTarget) -> tuple[str, int]:
    """Host and port of the first server URL (NATS's default port when it names none)."""
    parts = urlsplit(target.servers[0] if "://" in target.servers[0] else f"nats://{target.servers[0]}")
    return parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORT


def concrete_subject(subject: str) -> str:
    """A publishable subject for a pattern: each ``*`` / ``>`` token becomes ``opsverify``."""
    return ".".join(PROBE_TOKEN if token in ("*", ">") else token for token in subject.split("."))


@dataclass
class ErrorLog:
    """The ``error_cb`` of a probe connection: every asynchronous error the client reported."""

    errors: list[str] = field(default_factory=list)

    async def callback(self, err: Exception) -> None:
        """nats-py wants a coroutine function here (a bound ``async def`` is one)."""
        self.errors.append(" ".join(str(err).split()) or type(err).__name__)

    def violations(self, kind: Direction) -> dict[str, str]:
        """``{subject: server text}`` of the permission violations seen for ``kind``.

        nats-py lower-cases the server's error line, subject included: keys are lower case, so
        look subjects up with :meth:`violation`.
        """
        wanted = "publish" if kind == "publish" else "subscription"
        found: dict[str, str] = {}
        for text in self.errors:
            match = _VIOLATION.search(text)
            if match and match.group(1).lower() == wanted:
                found.setdefault(match.group(2).lower(), text.removeprefix("nats: "))
        return found

    def violation(self, kind: Direction, subject: str) -> str | None:
        """The server's violation text for ``subject`` (case-insensitive), if any."""
        return self.violations(kind).get(subject.lower())


# ---------------------------------------------------------------------------------------------
# connecting
# ---------------------------------------------------------------------------------------------


def tls_context(target: NatsTarget, base_dir: str | None) -> ssl.SSLContext | None:
    """The client TLS context: the target's CA bundle, else the system store, with its client
    certificate for mutual TLS (``None``: plain)."""
    if not target.uses_tls:
        return None
    ca_bundle = os.path.expanduser(target.ca_bundle) if target.ca_bundle else None
    return ssl_context(ca_bundle, True, base_dir, target.client_cert, target.client_key)


@dataclass
class NatsConnection:
    """A live probe connection and the asynchronous errors it has seen."""

    client: Client
    errors: ErrorLog
    identity: str
    where: str
    connect_ms: float
    material: Material = field(repr=False)

    @property
    def server_info(self) -> dict[str, Any]:
        info = getattr(self.client, "_server_info", None)
        return info if isinstance(info, dict) else {}

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.client.close(), CLOSE_S)
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


def _auth_message(material: Material, where: str, server_text: str) -> str:
    text = f"authorization violation for {material.identity} on {where}"
    creds = material.creds
    hints: list[str] = []
    if creds is not None:
        expires = creds.expires_at
        if expires is not None and expires <= dt.datetime.now(dt.UTC):
            hints.append(f"its user JWT expired {expires:%Y-%m-%d %H:%M} UTC")
        if creds.seed_public and creds.user_public and creds.seed_public != creds.user_public:
            hints.append("the nkey seed does not belong to the JWT's user")
    if "authorization violation" not in server_text.lower():
        hints.append(f"server said: {server_text}")
    return text + (f" ({'; '.join(hints)})" if hints else "")


async def _client_certificate_refused(ctx: ProbeContext[NatsTarget], tls: ssl.SSLContext | None, base: str | None,
                                      where: str, exc: BaseException, log: ErrorLog, auth_as_data: bool) -> None:
    """Raise :class:`NatsAuthRejected` (or :class:`Unreachable`) when the server refused the TLS client certificate.

    When the failure carries no alert but TLS was in use, the server is asked again the quiet way
    (:mod:`opsverify.net.client_cert_verdict`): a refusal lost behind a reset is still a refusal."""
    target = ctx.target
    alert = certificate_alert(log.errors[-1] if log.errors and not isinstance(exc, ssl.SSLError) else exc)
    if alert is None and tls is not None and not isinstance(exc, ssl.SSLCertVerificationError):
        host, port = _first_server(target)
        ctx.phase = f"asking {host}:{port} for its verdict on the client certificate"
        alert = await certificate_verdict(host, port, tls, timeout=max(0.2, ctx.remaining()), greeting=b"INFO")
    if alert is None:
        return
    shown = f"client certificate {target.client_cert}" if target.client_cert else "no client certificate"
    message = f"{where} refused the TLS handshake ({alert}) with {shown}{expiry_hint(target, base)}"
    if auth_as_data:
        raise NatsAuthRejected(message) from None
    raise Unreachable(f"not connected: {message}") from None


def _connect_failure(where: str, exc: BaseException, log: ErrorLog, hint: str = "") -> Unreachable:
    cause: Any = exc
    if isinstance(exc, nats.errors.NoServersError) and log.errors:
        cause = log.errors[-1]
    text = " ".join(str(cause).split()) or type(cause).__name__
    lowered = text.lower()
    if isinstance(exc, ssl.SSLCertVerificationError) or "certificate verify failed" in lowered:
        detail = getattr(exc, "verify_message", None) or text.split("certificate verify failed:")[-1]
        detail = str(detail).split("(_ssl")[0].strip(" ()")
        return Unreachable(f"cannot connect to {where}: TLS certificate not trusted ({detail}){hint}")
    if isinstance(exc, ssl.SSLError):
        return Unreachable(f"cannot connect to {where}: TLS handshake failed ({text[:160]}){hint}")
    if "connect call failed" in lowered or "connection refused" in lowered:
        return Unreachable(f"cannot connect to {where}: connection refused{hint}")
    if isinstance(exc, socket.gaierror) or "name or service not known" in lowered or "name resolution" in lowered:
        return Unreachable(f"cannot connect to {where}: DNS lookup failed ({text[:160]}){hint}")
    return Unreachable(f"cannot connect to {where}: {text[:200]}{hint}")


async def open_connection(
    ctx: ProbeContext[NatsTarget],
    credentials: NatsCredentials | None = None,
    *,
    auth_as_data: bool = False,
) -> NatsConnection:
    """Connect to ``ctx.target`` with ``credentials`` (default: the target's own).

    Raises :class:`Unreachable` / :class:`ProbeTimeout` / :class:`SecretMissing`; a rejected
    credential raises :class:`NatsAuthRejected` when ``auth_as_data`` (for :func:`probe_connect`),
    else :class:`Unreachable` naming the credential.
    """
    target = ctx.target
    material = load_material(credentials or target.credentials())
    base = base_dir(ctx.env)
    tls_key = f"nats-tls:{target.uses_tls}:{target.ca_bundle}:{base}:{target.client_cert}"
    tls = ctx.resource(tls_key, lambda: tls_context(target, base))
    where = _where(target)
    log = ErrorLog()
    ctx.phase = f"connecting to {where} as {material.identity}"
    budget = ctx.left(reserve=0.1)
    started = time.monotonic()
    try:
        client = await asyncio.wait_for(
            nats.connect(
                servers=target.servers,
                name="opsverify",
                error_cb=log.callback,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.05,
                connect_timeout=max(1, int(budget)),
                dont_randomize=True,
                tls=tls,
                **material.options,
            ),
            budget,
        )
    except (asyncio.TimeoutError, TimeoutError):
        raise ProbeTimeout(
            f"connecting to {where} timed out after {budget:.3g} s (no NATS INFO / handshake)"
        ) from None
    except nats.errors.NoServersError as exc:
        await _client_certificate_refused(ctx, tls, base, where, exc, log, auth_as_data)
        raise _connect_failure(where, exc, log, expiry_hint(target, base)) from None
    except nats.errors.Error as exc:
        text = " ".join(str(exc).split())
        if isinstance(exc, nats.errors.AuthorizationError) or "authorization violation" in text.lower():
            message = _auth_message(material, where, text)
            if auth_as_data:
                raise NatsAuthRejected(message) from None
            raise Unreachable(f"not connected: {message}") from None
        raise _connect_failure(where, exc, log) from None
    except (OSError, ssl.SSLError) as exc:
        await _client_certificate_refused(ctx, tls, base, where, exc, log, auth_as_data)
        raise _connect_failure(where, exc, log, expiry_hint(target, base)) from None
    connect_ms = (time.monotonic() - started) * 1000
    return NatsConnection(client, log, material.identity, where, connect_ms, material)


@dataclass
class NatsConnectFacts:
    """Whether one credential is accepted, and what the server said about itself."""

    where: str
    identity: str
    mode: str
    connected: bool
    auth_error: str | None = None
    connect_ms: float = 0.0
    server_name: str | None = None
    server_version: str | None = None
    tls_required: bool | None = None
    jetstream_advertised: bool | None = None


async def probe_connect(
    ctx: ProbeContext[NatsTarget], credentials: NatsCredentials | None = None
) -> NatsConnectFacts:
    """Connect once with ``credentials`` (default: the target's) and disconnect."""
    target = ctx.target
    creds = credentials or target.credentials()
    try:
        conn = await open_connection(ctx, creds, auth_as_data=True)
    except NatsAuthRejected as rejected:
        material = load_material(creds)
        return NatsConnectFacts(_where(target), material.identity, creds.mode, False, str(rejected))
    try:
        info = conn.server_info
        return NatsConnectFacts(
            where=conn.where,
            identity=conn.identity,
            mode=creds.mode,
            connected=True,
            connect_ms=conn.connect_ms,
            server_name=info.get("server_name"),
            server_version=info.get("version"),
            tls_required=info.get("tls_required"),
            jetstream_advertised=info.get("jetstream"),
        )
    finally:
        await conn.close()


async def connected(ctx: ProbeContext[NatsTarget]) -> NatsConnection:
    """A connection for a detail probe, after the connect probe proved the credential works."""
    facts: NatsConnectFacts = await ctx.depend("nats_connection")
    if not facts.connected:
        raise Unreachable(f"not connected: {facts.auth_error}")
    return await open_connection(ctx)


def _probe_headers(conn: NatsConnection, kind: str) -> dict[str, str] | None:
    if not conn.server_info.get("headers"):
        return None
    return {"Nats-Expected-Stream": NO_SUCH_STREAM, "Opsverify-Probe": kind}


def _request_denial(conn: NatsConnection, subject: str) -> str | None:
    denied = conn.errors.violation("publish", subject)
    if denied:
        return denied
    for inbox, text in conn.errors.violations("subscribe").items():
        if inbox.startswith("_inbox."):
            return f"{text} (the reply inbox)"
    return None


async def guarded(conn: NatsConnection, work: Awaitable[T], subject: str) -> T:
    """Await a request-like ``work`` on ``subject``, but stop as soon as the server reports that
    the publish (or the reply inbox subscription) is denied -- a denied request would otherwise
    just time out. Raises :class:`NatsPublishDenied` with the server's text."""
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            denied = _request_denial(conn, subject)
            if denied:
                raise NatsPublishDenied(denied)
            await asyncio.wait({task}, timeout=0.02)
        return task.result()
    finally:
        if not task.done():
            task.cancel()
