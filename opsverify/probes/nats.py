"""NATS probes: connect with one credential, round trips, the permission matrix, the credential's
JWT claims, JetStream streams and consumers, and the monitoring endpoint.

What the server does is what we report (nats-py 2.16 against nats-server 2.15, see the launcher's
"Facts that bite" in :mod:`opsverify_sandbox.servers.nats`):

* a rejected credential makes ``nats.connect`` raise ``nats: 'Authorization Violation'``: the
  connect probe returns it as data (:attr:`NatsConnectFacts.auth_error`), so the *check* fails;
  refused / DNS / TLS / stalled connections are :class:`~opsverify.errors.Unreachable` or
  :class:`~opsverify.errors.ProbeTimeout` (the check errors);
* a denied publish or subscribe raises nothing: the server's ``permissions violation`` arrives
  only through ``error_cb`` (before the PONG of the next flush), so :class:`ErrorLog` collects
  them and the permission probes match them to subjects;
* probe messages (canary, allowed-publish tests) carry ``Nats-Expected-Stream`` naming a stream
  that does not exist: core subscribers still get them, but no JetStream stream stores them.

Every probe other than the connect and credential probes first awaits the connect probe
(``ctx.depend``), so an unreachable server or a rejected credential gives all of them the same
one-line cause.

:func:`open_connection` and :func:`probe_connect` take any :class:`NatsCredentials`, not only the
target's own, so the same probe can verify another credential of the same server.

Example::

    facts = await probe_connect(ctx)                  # NatsConnectFacts(connected=True, ...)
    conn = await open_connection(ctx)                 # NatsConnection: .client, .errors
    try:
        await conn.client.publish("orders.new", b"")
    finally:
        await conn.close()
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import logging
import os
import re
import socket
import ssl
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar


from opsverify.config.base import Safety
from opsverify.config.nats import NatsCredentials, NatsTarget
from opsverify.config.secrets import REDACTOR, SecretRef
from opsverify.engine import ProbeContext
from opsverify.errors import ProbeTimeout, SecretMissing, UnexpectedResponse, Unreachable
from opsverify.lazy import lazy_module, needs
from opsverify.net.http import request
from opsverify.net.sampling import LatencyReading, Timed, sample_latency
from opsverify.client_certs import certificate_alert, expiry_hint
from opsverify.net.tls import TlsSettings, base_dir, ssl_context
from opsverify.safety import permit

if TYPE_CHECKING:
    import nats
    import nats.aio.client as nats_client
    import nats.errors
    import nats.js.errors
    from nats.aio.client import Client
else:
    nats = lazy_module("nats")  # nats.errors and nats.js.errors are imported by the package itself
    nats_client = lazy_module("nats.aio.client")

PROBE_TOKEN = "opsverify"
NO_SUCH_STREAM = "opsverify-probe-no-stream"  # Nats-Expected-Stream: keeps probe messages out of streams
SETTLE_S = 0.1  # after a flush, how long to keep listening for late permission violations
DENIAL_WAIT_S = 1.0  # at most this long for the violations of subjects that must be denied
CLOSE_S = 1.0

Direction = Literal["publish", "subscribe"]

needs("nkeys")  # imported inside functions; loaded before the wave


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


def _short_key(key: str | None) -> str:
    return f"{key[:10]}…" if key else "?"


def _utc(epoch: Any) -> dt.datetime | None:
    if isinstance(epoch, (int, float)) and not isinstance(epoch, bool) and epoch > 0:
        return dt.datetime.fromtimestamp(float(epoch), dt.UTC)
    return None


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
# credentials
# ---------------------------------------------------------------------------------------------


@dataclass
class CredsFile:
    """The two parts of a ``.creds`` file and the (unverified) claims of its user JWT."""

    jwt: str = field(repr=False)
    seed: str = field(repr=False)
    claims: dict[str, Any]
    seed_public: str | None

    @property
    def user_public(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None

    @property
    def user_name(self) -> str | None:
        name = self.claims.get("name")
        return name if isinstance(name, str) and name else None

    @property
    def issuer_account(self) -> str | None:
        """The account that issued the user: ``nats.issuer_account`` (signing keys) or ``iss``."""
        nats_claim = self.claims.get("nats")
        via_signing_key = nats_claim.get("issuer_account") if isinstance(nats_claim, dict) else None
        issuer = via_signing_key or self.claims.get("iss")
        return issuer if isinstance(issuer, str) else None

    @property
    def issued_at(self) -> dt.datetime | None:
        return _utc(self.claims.get("iat"))

    @property
    def expires_at(self) -> dt.datetime | None:
        return _utc(self.claims.get("exp"))

    def canonical(self) -> str:
        """The file in the exact layout nats-py's reader expects."""
        return (
            f"-----BEGIN NATS USER JWT-----\n{self.jwt}\n------END NATS USER JWT------\n\n"
            f"-----BEGIN USER NKEY SEED-----\n{self.seed}\n------END USER NKEY SEED------\n"
        )


def _block_after(lines: list[str], marker: str) -> str | None:
    for index, line in enumerate(lines):
        if marker in line:
            for following in lines[index + 1 :]:
                if following.strip():
                    return following.strip()
    return None


def _decode_jwt(token: str, label: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        raise SecretMissing(f"{label}: the user JWT in the creds cannot be decoded") from None
    if not isinstance(claims, dict):
        raise SecretMissing(f"{label}: the user JWT's payload is not a JSON object")
    return claims


def read_creds(ref: SecretRef) -> CredsFile:
    """Resolve a ``creds`` reference: the content of a ``.creds`` file, or a path to one."""
    text = ref.reveal()
    label = f"secret {ref.label}"
    if "BEGIN NATS USER JWT" not in text:
        candidate = text.strip()
        path = Path(os.path.expandvars(os.path.expanduser(candidate))) if "\n" not in candidate else None
        if path is not None and not path.is_absolute() and ref.base_dir:
            path = Path(ref.base_dir) / path
        if path is None or not path.is_file():
            raise SecretMissing(f"{label} is not a .creds file (no NATS USER JWT block) nor a path to one")
        label = f"creds file {path}"
        try:
            text = path.read_text()
        except OSError as exc:
            raise SecretMissing(f"{label} cannot be read ({exc.strerror or exc})") from None
        REDACTOR.add(text)
    lines = text.splitlines()
    token = _block_after(lines, "BEGIN NATS USER JWT")
    seed = _block_after(lines, "BEGIN USER NKEY SEED")
    if not token or token.startswith("---"):
        raise SecretMissing(f"{label} has no user JWT")
    if not seed or not seed.startswith("SU"):
        raise SecretMissing(f"{label} has no user nkey seed")
    return CredsFile(token, seed, _decode_jwt(token, label), _seed_public(seed))


def _seed_public(seed: str) -> str | None:
    import nkeys

    try:
        public: bytes = nkeys.from_seed(bytearray(seed.encode())).public_key
    except Exception:  # noqa: BLE001 - any malformed seed
        return None
    return public.decode()


@dataclass
class Material:
    """What ``nats.connect`` needs for one credential, and how to name it in messages."""

    mode: str
    identity: str
    options: dict[str, Any] = field(repr=False)
    creds: CredsFile | None = None


def load_material(credentials: NatsCredentials) -> Material:
    """Reveal the credential's secrets (``SecretMissing`` when absent) and build connect options."""
    mode = credentials.mode
    if credentials.creds is not None:
        creds = read_creds(credentials.creds)
        who = f"user {creds.user_name or '?'} ({_short_key(creds.user_public)})"
        return Material(mode, who, {"user_credentials": nats_client.RawCredentials(creds.canonical())}, creds)
    if credentials.nkey_seed is not None:
        seed = credentials.nkey_seed.reveal().strip()
        public = _seed_public(seed)
        if public is None:
            raise SecretMissing(f"secret {credentials.nkey_seed.label} is not an nkey seed")
        return Material(mode, f"nkey user {_short_key(public)}", {"nkeys_seed_str": seed})
    if credentials.user is not None and credentials.password is not None:
        password = credentials.password.reveal()
        return Material(mode, f"user {credentials.user}", {"user": credentials.user, "password": password})
    if credentials.token is not None:
        token = credentials.token.reveal().strip()
        return Material(mode, f"token user ({credentials.token.label})", {"token": token})
    return Material(mode, "anonymous user (no credential configured)", {})


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


class AuthRejected(Exception):
    """Internal: the server refused the credential (turned into data or :class:`Unreachable`)."""


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


def _client_certificate_refused(target: NatsTarget, base: str | None, where: str, exc: BaseException,
                                log: ErrorLog, auth_as_data: bool) -> None:
    """Raise :class:`AuthRejected` (or :class:`Unreachable`) when the server refused the TLS client certificate."""
    alert = certificate_alert(log.errors[-1] if log.errors and not isinstance(exc, ssl.SSLError) else exc)
    if alert is None:
        return
    shown = f"client certificate {target.client_cert}" if target.client_cert else "no client certificate"
    message = f"{where} refused the TLS handshake ({alert}) with {shown}{expiry_hint(target, base)}"
    if auth_as_data:
        raise AuthRejected(message) from None
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
    ctx: ProbeContext[Any],
    credentials: NatsCredentials | None = None,
    *,
    auth_as_data: bool = False,
) -> NatsConnection:
    """Connect to ``ctx.target`` with ``credentials`` (default: the target's own).

    Raises :class:`Unreachable` / :class:`ProbeTimeout` / :class:`SecretMissing`; a rejected
    credential raises :class:`AuthRejected` when ``auth_as_data`` (for :func:`probe_connect`),
    else :class:`Unreachable` naming the credential.
    """
    target: NatsTarget = ctx.target
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
        _client_certificate_refused(target, base, where, exc, log, auth_as_data)
        raise _connect_failure(where, exc, log, expiry_hint(target, base)) from None
    except nats.errors.Error as exc:
        text = " ".join(str(exc).split())
        if isinstance(exc, nats.errors.AuthorizationError) or "authorization violation" in text.lower():
            message = _auth_message(material, where, text)
            if auth_as_data:
                raise AuthRejected(message) from None
            raise Unreachable(f"not connected: {message}") from None
        raise _connect_failure(where, exc, log) from None
    except (OSError, ssl.SSLError) as exc:
        _client_certificate_refused(target, base, where, exc, log, auth_as_data)
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
    ctx: ProbeContext[Any], credentials: NatsCredentials | None = None
) -> NatsConnectFacts:
    """Connect once with ``credentials`` (default: the target's) and disconnect."""
    target: NatsTarget = ctx.target
    creds = credentials or target.credentials()
    try:
        conn = await open_connection(ctx, creds, auth_as_data=True)
    except AuthRejected as rejected:
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


async def connected(ctx: ProbeContext[Any]) -> NatsConnection:
    """A connection for a detail probe, after the connect probe proved the credential works."""
    facts: NatsConnectFacts = await ctx.depend("nats_connection")
    if not facts.connected:
        raise Unreachable(f"not connected: {facts.auth_error}")
    return await open_connection(ctx)


def _probe_headers(conn: NatsConnection, kind: str) -> dict[str, str] | None:
    if not conn.server_info.get("headers"):
        return None
    return {"Nats-Expected-Stream": NO_SUCH_STREAM, "Opsverify-Probe": kind}


class PublishDenied(Exception):
    """Internal: the server refused a request's publish (or its reply inbox) while we waited."""


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
    just time out. Raises :class:`PublishDenied` with the server's text."""
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            denied = _request_denial(conn, subject)
            if denied:
                raise PublishDenied(denied)
            await asyncio.wait({task}, timeout=0.02)
        return task.result()
    finally:
        if not task.done():
            task.cancel()


# ---------------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------------


@dataclass
class RoundTrip:
    """One request/reply or canary publish/receive: the time it took, or what went wrong."""

    subject: str
    latency_ms: float | None
    reply: str = ""
    problem: str | None = None
    started: float = 0.0
    ended: float = 0.0
    reading: LatencyReading | None = None  # the latency in samples, when the first round trip worked

    @property
    def ok(self) -> bool:
        return self.problem is None and self.latency_ms is not None


async def probe_request(ctx: ProbeContext[Any]) -> RoundTrip:
    """Send the target's ``request`` to its service subject and time the reply (in samples)."""
    target: NatsTarget = ctx.target
    assert target.request is not None
    permit(ctx, Safety.read_only if target.request.reads_only else Safety.mutating, f"a request to {target.request.subject}")
    conn = await connected(ctx)
    try:
        payload = target.request.payload.encode()
        first = await _request_once(ctx, conn, target.request.subject, payload)
        if first.ok:
            first.reading = await _sampled(ctx, first, lambda: _request_once(ctx, conn, first.subject, payload),
                                           f"request on {first.subject}")
        return first
    finally:
        await conn.close()


async def _request_once(ctx: ProbeContext[Any], conn: NatsConnection, subject: str, payload: bytes) -> RoundTrip:
    ctx.phase = f"request on {subject}"
    wait = ctx.left(reserve=CLOSE_S / 4)
    started = time.monotonic()
    try:
        msg = await guarded(conn, conn.client.request(subject, payload, timeout=wait), subject)
    except PublishDenied as denied:
        return RoundTrip(subject, None, problem=str(denied))
    except nats.errors.NoRespondersError:
        return RoundTrip(subject, None, problem=f"no responders on {subject}")
    except nats.errors.TimeoutError:
        return RoundTrip(subject, None, problem=f"no reply on {subject} within {wait:.2g} s")
    ended = time.monotonic()
    return RoundTrip(subject, (ended - started) * 1000, msg.data[:2048].decode(errors="replace"),
                     started=started, ended=ended)


async def _sampled(
    ctx: ProbeContext[Any], first: RoundTrip, again: Callable[[], Awaitable[RoundTrip]], what: str
) -> LatencyReading:
    """The round trip's latency in samples the engine vouches for, ``first`` counting as one."""

    async def one() -> Timed:
        trip = await again()
        if not trip.ok:
            raise ProbeTimeout(f"{what}: {trip.problem or 'no round trip'}")
        return Timed(trip.started, trip.ended)

    return await sample_latency(ctx, one, host=_where(ctx.target), what=what, seed=Timed(first.started, first.ended))


async def probe_canary(ctx: ProbeContext[Any]) -> RoundTrip:
    """Subscribe to the canary subject, publish unique messages, time until each comes back (in samples)."""
    target: NatsTarget = ctx.target
    assert target.canary_subject is not None
    subject = target.canary_subject
    permit(ctx, Safety.mutating, f"a canary publish to {subject}")
    conn = await connected(ctx)
    try:
        ctx.phase = f"subscribing to canary subject {subject}"
        sub = await conn.client.subscribe(subject)
        await conn.client.flush(timeout=max(1, int(ctx.left())))
        first = await _canary_once(ctx, conn, sub, subject)
        if first.ok:
            first.reading = await _sampled(ctx, first, lambda: _canary_once(ctx, conn, sub, subject),
                                           f"canary round trip on {subject}")
        return first
    finally:
        await conn.close()


async def _canary_once(ctx: ProbeContext[Any], conn: NatsConnection, sub: Any, subject: str) -> RoundTrip:
    marker = f"opsverify-canary-{uuid.uuid4()}".encode()
    ctx.phase = f"waiting for the canary on {subject}"
    started = time.monotonic()
    await conn.client.publish(subject, marker, headers=_probe_headers(conn, "canary"))
    await conn.client.flush(timeout=max(1, int(ctx.left())))
    while True:
        denied = conn.errors.violation("subscribe", subject) or conn.errors.violation("publish", subject)
        if denied:
            return RoundTrip(subject, None, problem=denied)
        left = ctx.left(reserve=CLOSE_S / 4, floor=0.0)
        if left <= 0:
            return RoundTrip(subject, None, problem=f"the canary did not come back within {ctx.timeout:g} s")
        try:
            msg = await sub.next_msg(timeout=min(0.1, left))
        except nats.errors.TimeoutError:
            continue
        if msg.data == marker:
            ended = time.monotonic()
            return RoundTrip(subject, (ended - started) * 1000, msg.data.decode(), started=started, ended=ended)


# ---------------------------------------------------------------------------------------------
# permission matrix
# ---------------------------------------------------------------------------------------------


@dataclass
class SubjectVerdict:
    """How the server treated one configured subject."""

    subject: str
    tested_as: str
    denied: bool
    server_said: str | None = None

    @property
    def shown(self) -> str:
        return self.subject if self.tested_as == self.subject else f"{self.subject} (as {self.tested_as})"


@dataclass
class PermissionFacts:
    """The server's verdict for every configured subject of one direction."""

    direction: Direction
    identity: str
    verdicts: dict[str, SubjectVerdict]
    waited_s: float

    def denied_among(self, subjects: list[str]) -> list[SubjectVerdict]:
        return [self.verdicts[s] for s in subjects if self.verdicts[s].denied]

    def allowed_among(self, subjects: list[str]) -> list[SubjectVerdict]:
        return [self.verdicts[s] for s in subjects if not self.verdicts[s].denied]


async def _await_violations(
    ctx: ProbeContext[Any], conn: NatsConnection, direction: Direction, must_deny: set[str]
) -> float:
    """Listen for violations: at least :data:`SETTLE_S`, up to :data:`DENIAL_WAIT_S` for denials."""
    started = time.monotonic()
    limit = min(DENIAL_WAIT_S, ctx.left(reserve=CLOSE_S / 4, floor=SETTLE_S))
    while True:
        elapsed = time.monotonic() - started
        seen = set(conn.errors.violations(direction))
        if elapsed >= SETTLE_S and {s.lower() for s in must_deny} <= seen:
            return elapsed
        if elapsed >= limit:
            return elapsed
        await asyncio.sleep(0.02)


async def probe_permissions(ctx: ProbeContext[Any], direction: Direction) -> PermissionFacts:
    """Publish to / subscribe on every allowed and denied subject; collect the server's verdicts."""
    target: NatsTarget = ctx.target
    allow: list[str] = getattr(target, f"allow_{direction}")
    deny: list[str] = getattr(target, f"deny_{direction}")
    if direction == "publish":
        permit(ctx, Safety.mutating, f"publishes to {', '.join([*allow, *deny])}")
    conn = await connected(ctx)
    try:
        tested = {s: (concrete_subject(s) if direction == "publish" else s) for s in [*allow, *deny]}
        ctx.phase = f"testing {direction} permissions of {conn.identity}"
        for subject in tested.values():
            if direction == "publish":
                await conn.client.publish(subject, b"", headers=_probe_headers(conn, "permission-check"))
            else:
                await conn.client.subscribe(subject)
        await conn.client.flush(timeout=max(1, int(ctx.left())))
        waited = await _await_violations(ctx, conn, direction, {tested[s] for s in deny})
        seen = conn.errors.violations(direction)
        verdicts = {
            subject: SubjectVerdict(subject, concrete, concrete.lower() in seen, seen.get(concrete.lower()))
            for subject, concrete in tested.items()
        }
        return PermissionFacts(direction, conn.identity, verdicts, waited)
    except nats.errors.TimeoutError:
        raise ProbeTimeout(f"{conn.where} did not answer a flush within {ctx.timeout:g} s ({ctx.phase})") from None
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------------------
# the credential itself
# ---------------------------------------------------------------------------------------------


@dataclass
class CredentialFacts:
    """The user JWT of a ``.creds`` credential (read locally, not verified)."""

    source: str
    user_name: str | None
    user_public: str | None
    issuer_account: str | None
    issued_at: dt.datetime | None
    expires_at: dt.datetime | None

    def days_left(self, now: dt.datetime | None = None) -> float | None:
        if self.expires_at is None:
            return None
        return (self.expires_at - (now or dt.datetime.now(dt.UTC))).total_seconds() / 86400

    def age_days(self, now: dt.datetime | None = None) -> float | None:
        if self.issued_at is None:
            return None
        return ((now or dt.datetime.now(dt.UTC)) - self.issued_at).total_seconds() / 86400

    @property
    def who(self) -> str:
        return f"user {self.user_name or '?'} ({_short_key(self.user_public)})"


async def probe_credential(ctx: ProbeContext[Any]) -> CredentialFacts:
    """Decode the user JWT of the target's ``.creds`` (no network)."""
    target: NatsTarget = ctx.target
    assert target.creds is not None
    ctx.phase = f"reading {target.creds.label}"
    creds = read_creds(target.creds)
    return CredentialFacts(
        source=target.creds.label,
        user_name=creds.user_name,
        user_public=creds.user_public,
        issuer_account=creds.issuer_account,
        issued_at=creds.issued_at,
        expires_at=creds.expires_at,
    )


@dataclass
class AccountFacts:
    """The account a credential belongs to, and where we learned it."""

    public_key: str | None
    name: str | None
    source: str

    def matches(self, expected: str) -> bool:
        return expected in {self.public_key, self.name}

    @property
    def shown(self) -> str:
        parts = [p for p in (self.name, self.public_key) if p]
        return " / ".join(parts) or "unknown"


USER_INFO = "$SYS.REQ.USER.INFO"


async def probe_account(ctx: ProbeContext[Any]) -> AccountFacts:
    """The credential's account: from the user JWT when a public key is expected and the
    credential is a ``.creds``; otherwise as the server reports it (``$SYS.REQ.USER.INFO``)."""
    target: NatsTarget = ctx.target
    if target.creds is not None and target.account_is_key:
        creds = await ctx.depend("nats_credential")
        return AccountFacts(creds.issuer_account, None, "the user JWT's issuer")
    conn = await connected(ctx)
    try:
        ctx.phase = f"asking {USER_INFO}"
        try:
            wait = ctx.left(reserve=CLOSE_S / 4)
            msg = await guarded(conn, conn.client.request(USER_INFO, b"", timeout=wait), USER_INFO)
        except (PublishDenied, nats.errors.NoRespondersError, nats.errors.TimeoutError) as exc:
            why = str(exc) if isinstance(exc, PublishDenied) else "no answer"
            raise UnexpectedResponse(
                f"cannot read the account of {conn.identity}: {USER_INFO} failed ({why}); "
                "configure the account's public key to check it from the creds instead"
            ) from None
        try:
            data = json.loads(msg.data).get("data") or {}
        except (ValueError, AttributeError):
            raise UnexpectedResponse(f"{USER_INFO} answered with something that is not JSON") from None
        account = data.get("account")
        name = data.get("account_name") or (account if account and not account.startswith("A") else None)
        return AccountFacts(account if isinstance(account, str) else None, name, f"the server ({USER_INFO})")
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------------------
# JetStream
# ---------------------------------------------------------------------------------------------


@dataclass
class StreamFacts:
    name: str
    subjects: list[str]
    replicas: int
    storage: str
    messages: int
    consumers: int


@dataclass
class ConsumerFacts:
    stream: str
    name: str
    num_pending: int
    num_ack_pending: int
    num_redelivered: int
    num_waiting: int
    ack_floor: int = 0  # stream sequence below which every message is acknowledged


@dataclass
class JetStreamFacts:
    """JetStream as the credential's account sees it (and as ``/varz`` reports it, when known)."""

    enabled: bool
    disabled_reason: str | None = None
    streams: dict[str, StreamFacts | None] = field(default_factory=dict)
    consumers: dict[str, ConsumerFacts | None] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # item name -> why it is missing


def _api_text(exc: nats.js.errors.APIError) -> str:
    parts = [p for p in (exc.description, f"err_code {exc.err_code}" if exc.err_code else None) if p]
    return ", ".join(parts) or type(exc).__name__


async def probe_jetstream(ctx: ProbeContext[Any]) -> JetStreamFacts:
    """Account info, then each configured stream and consumer; ``/varz`` when monitoring is set."""
    target: NatsTarget = ctx.target
    conn = await connected(ctx)
    try:
        js = conn.client.jetstream(timeout=ctx.left(reserve=CLOSE_S / 4))
        ctx.phase = "reading JetStream account info"
        server_off = await _varz_jetstream_off(ctx, target)
        try:
            await guarded(conn, js.account_info(), "$JS.API.INFO")
        except PublishDenied as denied:
            raise UnexpectedResponse(f"{conn.identity} may not use the JetStream API: {denied}") from None
        except nats.js.errors.ServiceUnavailableError:
            reason = server_off or "JetStream is not enabled for this account or server (503, no JetStream responders)"
            return JetStreamFacts(False, reason)
        except nats.errors.NoRespondersError:
            return JetStreamFacts(False, server_off or "no JetStream responders ($JS.API.INFO)")
        except nats.js.errors.APIError as exc:
            if exc.err_code == 10039 or exc.code == 503:
                return JetStreamFacts(False, server_off or f"JetStream not enabled for the account ({_api_text(exc)})")
            raise UnexpectedResponse(f"JetStream account info failed: {_api_text(exc)}") from None
        except nats.errors.TimeoutError:
            raise ProbeTimeout(f"JetStream API did not answer within {ctx.timeout:g} s") from None
        facts = JetStreamFacts(True, None)
        if server_off:
            facts.enabled, facts.disabled_reason = False, server_off
        for stream in target.streams:
            ctx.phase = f"reading stream {stream.name}"
            try:
                info = await js.stream_info(stream.name)
            except nats.js.errors.NotFoundError:
                facts.streams[stream.name] = None
                facts.missing[stream.name] = f"stream {stream.name} does not exist"
                continue
            config = info.config
            storage = getattr(config.storage, "value", config.storage) or "?"  # an enum or a str
            facts.streams[stream.name] = StreamFacts(
                stream.name, list(config.subjects or []), int(config.num_replicas or 1), str(storage),
                int(info.state.messages), int(info.state.consumer_count),
            )
        for consumer in target.consumers:
            ctx.phase = f"reading consumer {consumer.name}"
            try:
                cinfo = await js.consumer_info(consumer.stream, consumer.consumer)
            except nats.js.errors.NotFoundError as exc:
                what = f"stream {consumer.stream}" if exc.err_code == 10059 else f"consumer {consumer.name}"
                facts.consumers[consumer.name] = None
                facts.missing[consumer.name] = f"{what} does not exist"
                continue
            facts.consumers[consumer.name] = ConsumerFacts(
                consumer.stream, consumer.consumer, int(cinfo.num_pending or 0),
                int(cinfo.num_ack_pending or 0), int(cinfo.num_redelivered or 0), int(cinfo.num_waiting or 0),
                int(getattr(cinfo.ack_floor, "stream_seq", 0) or 0),
            )
        return facts
    except nats.errors.TimeoutError:
        raise ProbeTimeout(f"JetStream API did not answer within {ctx.timeout:g} s ({ctx.phase})") from None
    finally:
        await conn.close()


async def _varz_jetstream_off(ctx: ProbeContext[Any], target: NatsTarget) -> str | None:
    """``/varz`` says JetStream is off (its ``jetstream`` has no ``config``); ``None`` when on or unknown."""
    if not target.monitoring_url:
        return None
    try:
        status, body, _ = await _monitor_get(ctx, target, "/varz")
    except (Unreachable, ProbeTimeout):
        return None  # the monitoring check reports that; JetStream is judged by the client alone
    if status != 200 or not isinstance(body, dict):
        return None
    js = body.get("jetstream")
    if isinstance(js, dict) and not js.get("config"):
        return f"JetStream is disabled on the server ({target.monitoring_url}/varz has no jetstream config)"
    return None


# ---------------------------------------------------------------------------------------------
# monitoring endpoint
# ---------------------------------------------------------------------------------------------


@dataclass
class MonitorHealth:
    """The answer of ``/healthz`` on the monitoring port."""

    url: str
    status: int
    health: str | None
    error: str | None
    latency_ms: float


async def _monitor_get(ctx: ProbeContext[Any], target: NatsTarget, path: str) -> tuple[int, Any, float]:
    """GET a monitoring endpoint through the network layer: status, JSON body and latency (ms)."""
    assert target.monitoring_url is not None
    url = target.monitoring_url.rstrip("/") + path
    tls = TlsSettings(target.ca_bundle, url.startswith("https://"), base_dir(ctx.env))
    answer = await request(ctx, "GET", url, tls=tls, what=f"GET {path}", budget=ctx.left(reserve=0.05))
    body: Any = answer.json_or_none()
    if body is None:
        body = {"raw": answer.text[:200]}
    return answer.status, body, answer.latency_ms


async def probe_monitoring(ctx: ProbeContext[Any]) -> MonitorHealth:
    """GET ``<monitoring_url>/healthz``."""
    target: NatsTarget = ctx.target
    ctx.phase = f"GET {target.monitoring_url}/healthz"
    status, body, latency = await _monitor_get(ctx, target, "/healthz")
    health = body.get("status") if isinstance(body, dict) else None
    error = body.get("error") if isinstance(body, dict) else None
    url = f"{(target.monitoring_url or '').rstrip('/')}/healthz"
    return MonitorHealth(url, status, health if isinstance(health, str) else None,
                         error if isinstance(error, str) else None, latency)
