"""Redis probes (``redis.asyncio``): authenticated PING, auth enforcement, a retired password, key TTLs.

Every probe opens its own short-lived connection (RESP2, no retries, socket timeouts of
``ctx.timeout``) and closes it. RESP2 on purpose: ``HELLO 3`` is unknown to Redis < 6 and many
managed services, and without credentials it fails with a HELLO error instead of the server's
plain "authentication required".

Faults the checks exist to catch come back as data: credentials the server refuses
(:attr:`RedisPing.rejection`), a client certificate it refuses under mutual TLS
(:attr:`RedisPing.certificate_refused`, see :mod:`opsverify.probes.redis_tls`), a server that answers PING without credentials
(:attr:`RedisUnauthenticated.refused` false), a retired password still accepted. Errors are for
"could not see": refused / reset / DNS / TLS (:class:`~opsverify.errors.Unreachable`), stalls
(:class:`~opsverify.errors.ProbeTimeout`), a missing secret, and :class:`RedisAuthRejected` when a
probe that needs to read keys cannot log in.

Facts that bite (redis-py 8.1, Redis 6.2): ``AuthenticationError`` subclasses ``ConnectionError``
(catch it first) and is retried by default (~4 s): ``Retry(NoBackoff(), 0)``. ``AUTH <password>``
against a server without any password fails ("called without any password configured").
``PTTL`` is -1 for a key without expiry and -2 for a key that vanished between SCAN and PTTL.

Example::

    ping = await ping(ctx)                 # ctx.target is a RedisTarget
    ping.authenticated, ping.rejection, ping.latency_ms
    sample = await key_ttls(ctx)           # ctx.item is a RedisKeys entry
    sample.sampled, sample.without_ttl, sample.longest_ttl_s
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opsverify.config.datastores import RedisKeys, RedisTarget
from opsverify.config.secrets import SecretRef
from opsverify.engine import ProbeContext
from opsverify.errors import CouldNotVerify, ProbeTimeout, RedisAuthRejected, UnexpectedResponse, Unreachable
from opsverify.lazy import lazy_module
from opsverify.probes.redis_tls import client_context, connection_class, refused_certificate

if TYPE_CHECKING:
    import redis.asyncio as aredis
    import redis.asyncio.retry as aretry
    import redis.backoff as backoff
    import redis.exceptions as rx
else:
    aredis = lazy_module("redis.asyncio")
    aretry = lazy_module("redis.asyncio.retry")
    backoff = lazy_module("redis.backoff")
    rx = lazy_module("redis.exceptions")

NO_PASSWORD_CONFIGURED = "without any password configured"
SCAN_BUDGET = 0.6  # share of the timeout key sampling may use; the rest is for connect and close


# -- facts -----------------------------------------------------------------------------------------
@dataclass
class RedisPing:
    """One authenticated ``PING`` (and ``DBSIZE`` when asked for)."""

    where: str
    user: str
    authenticated: bool
    rejection: str | None = None
    latency_ms: float = 0.0
    version: str | None = None
    role: str | None = None
    db_keys: int | None = None
    server_has_no_password: bool = False  # AUTH refused because the server has no password at all
    certificate_refused: str | None = None  # mutual TLS: why the server refused our client certificate


@dataclass
class RedisUnauthenticated:
    """A ``PING`` sent without any credentials: ``refused`` is what a fail-closed setup shows."""

    refused: bool
    reply: str


@dataclass
class RedisRetired:
    """A login with the retired password: ``accepted`` or the server's refusal."""

    accepted: bool
    reply: str
    server_has_no_password: bool = False


@dataclass
class RedisKeySample:
    """Keys matching a pattern, sampled with ``SCAN``, and their TTLs in seconds."""

    pattern: str
    sampled: int
    without_ttl: int
    shortest_ttl_s: float | None
    longest_ttl_s: float | None
    complete: bool  # the whole keyspace was scanned (not cut at ``sample`` keys or the time budget)
    cut_reason: str | None = None


# -- connections -----------------------------------------------------------------------------------
def _reveal_username(target: RedisTarget) -> str | None:
    if target.username is None:
        return None
    return target.username.reveal().strip() if isinstance(target.username, SecretRef) else target.username


def _client(ctx: ProbeContext[RedisTarget], target: RedisTarget, sslctx: ssl.SSLContext | None, *,
            username: str | None, password: str | None) -> aredis.Redis:
    """A one-connection client; ``sslctx`` (from :func:`~opsverify.probes.redis_tls.client_context`) for rediss://."""
    client = aredis.Redis(
        host=target.host,
        port=target.port,
        db=target.db,
        username=username,
        password=password,
        socket_timeout=ctx.timeout,
        socket_connect_timeout=ctx.timeout,
        retry=aretry.Retry(backoff.NoBackoff(), 0),
        protocol=2,
        single_connection_client=True,
        ssl=sslctx is not None,
    )
    if sslctx is not None:
        client.connection_pool.connection_class = connection_class(sslctx)
    return client


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def translate(exc: BaseException, ctx: ProbeContext[RedisTarget], target: RedisTarget) -> CouldNotVerify:
    """A library error as an opsverify error (authentication errors are handled by the caller)."""
    where = target.where
    if isinstance(exc, (rx.TimeoutError, asyncio.TimeoutError, TimeoutError)):
        return ProbeTimeout(f"{where}: no answer within {ctx.timeout:g} s ({ctx.phase})")
    if isinstance(exc, rx.ConnectionError):
        text = _short(exc)
        lowered = text.lower()
        root = exc.__cause__ or exc.__context__
        if "error 111 " in lowered or "connection refused" in lowered or isinstance(root, ConnectionRefusedError):
            reason = "connection refused"
        elif "name or service not known" in lowered or "temporary failure in name resolution" in lowered \
                or "error -2 " in lowered or "error -3 " in lowered:
            reason = "DNS lookup failed"
        elif isinstance(root, ssl.SSLCertVerificationError) or "certificate verify failed" in lowered:
            reason = "TLS certificate not trusted" + (f" ({root.verify_message})" if isinstance(
                root, ssl.SSLCertVerificationError) and root.verify_message else "")
        elif "closed by server" in lowered or "connection reset" in lowered:
            reason = f"the server closed the connection ({text})"
        else:
            reason = text
        return Unreachable(f"cannot connect to {where}: {reason}")
    if isinstance(exc, rx.ResponseError):
        return UnexpectedResponse(f"{where} refused {ctx.phase}: {_short(exc)}")
    if isinstance(exc, OSError):
        return Unreachable(f"cannot connect to {where}: {exc.strerror or _short(exc)}")
    return UnexpectedResponse(f"{where}: {type(exc).__name__}: {_short(exc)}")


async def _could_not_see(exc: BaseException, ctx: ProbeContext[RedisTarget], target: RedisTarget,
                         sslctx: ssl.SSLContext | None) -> CouldNotVerify:
    """:func:`translate`, or :class:`Unreachable` saying why when the server refused the client certificate."""
    if isinstance(exc, rx.ConnectionError) and not isinstance(exc, rx.AuthenticationError):
        refusal = await refused_certificate(ctx, target, sslctx, exc)
        if refusal:
            return Unreachable(f"not connected: {refusal}")
    return translate(exc, ctx, target)


async def _close(client: aredis.Redis) -> None:
    try:
        await asyncio.wait_for(client.aclose(), 1.0)
    except Exception:  # noqa: BLE001 - closing is best effort
        pass


# -- probes ----------------------------------------------------------------------------------------
async def ping(ctx: ProbeContext[RedisTarget]) -> RedisPing:
    """``PING`` with the target's credentials; ``DBSIZE`` too when ``min_db_keys`` is set."""
    target = ctx.target
    password = target.password.reveal() if target.password else None
    username = _reveal_username(target)
    facts = RedisPing(where=target.where, user=target.user_label, authenticated=False)
    sslctx = await client_context(ctx, target)
    client = _client(ctx, target, sslctx, username=username, password=password)
    try:
        ctx.phase = f"connecting to {target.where} and PING"
        started = time.monotonic()
        await client.ping()
        facts.latency_ms = (time.monotonic() - started) * 1000
        facts.authenticated = True
        ctx.phase = "INFO server"
        try:
            info = await client.info("server")
            facts.version = str(info.get("redis_version")) if info.get("redis_version") else None
        except rx.ResponseError:  # INFO may be denied by an ACL; the version is only a fact
            pass
        ctx.phase = "INFO replication"
        try:
            facts.role = str((await client.info("replication")).get("role") or "") or None
        except rx.ResponseError:
            pass
        if target.min_db_keys is not None:
            ctx.phase = f"DBSIZE of db {target.db}"
            facts.db_keys = int(await client.dbsize())
    except rx.AuthenticationError as exc:
        facts.rejection = _short(exc)
        facts.server_has_no_password = NO_PASSWORD_CONFIGURED in str(exc)
    except rx.ConnectionError as exc:
        facts.certificate_refused = await refused_certificate(ctx, target, sslctx, exc)
        if facts.certificate_refused is None:
            raise translate(exc, ctx, target) from None
    except Exception as exc:  # noqa: BLE001 - translated at the boundary
        raise translate(exc, ctx, target) from None
    finally:
        await _close(client)
    return facts


async def keyspace(ctx: ProbeContext[RedisTarget]) -> int:
    """The db index's key count (``DBSIZE``), from the target's :func:`ping` probe."""
    target = ctx.target
    seen: RedisPing = await ctx.depend("redis_ping")
    if seen.certificate_refused:
        raise RedisAuthRejected(f"cannot count keys: {seen.certificate_refused}")
    if not seen.authenticated:
        raise RedisAuthRejected(
            f"cannot count keys on {target.where}: authentication failed for user {seen.user} ({seen.rejection})"
        )
    if seen.db_keys is None:
        raise UnexpectedResponse(f"{target.where}: DBSIZE was not read (min_db_keys is not set)")
    return seen.db_keys


async def unauthenticated(ctx: ProbeContext[RedisTarget]) -> RedisUnauthenticated:
    """``PING`` without credentials: refused (fail-closed) or answered."""
    target = ctx.target
    sslctx = await client_context(ctx, target)
    client = _client(ctx, target, sslctx, username=None, password=None)
    try:
        ctx.phase = f"PING {target.where} without credentials"
        reply = await client.ping()
        return RedisUnauthenticated(refused=False, reply=f"PONG ({reply!r})" if reply is not True else "PONG")
    except rx.AuthenticationError as exc:
        return RedisUnauthenticated(refused=True, reply=_short(exc))
    except rx.ResponseError as exc:
        if "noauth" in str(exc).lower() or "authentication required" in str(exc).lower():
            return RedisUnauthenticated(refused=True, reply=_short(exc))
        raise await _could_not_see(exc, ctx, target, sslctx) from None
    except Exception as exc:  # noqa: BLE001
        raise await _could_not_see(exc, ctx, target, sslctx) from None
    finally:
        await _close(client)


async def retired_password(ctx: ProbeContext[RedisTarget]) -> RedisRetired:
    """Log in with ``retired_password`` (as the target's user) and ``PING``."""
    target = ctx.target
    assert target.retired_password is not None
    retired = target.retired_password.reveal()
    sslctx = await client_context(ctx, target)
    client = _client(ctx, target, sslctx, username=_reveal_username(target), password=retired)
    try:
        ctx.phase = f"login to {target.where} with the retired password"
        await client.ping()
        return RedisRetired(accepted=True, reply="PONG")
    except rx.AuthenticationError as exc:
        if NO_PASSWORD_CONFIGURED in str(exc):
            return RedisRetired(accepted=True, reply=_short(exc), server_has_no_password=True)
        return RedisRetired(accepted=False, reply=_short(exc))
    except Exception as exc:  # noqa: BLE001
        raise await _could_not_see(exc, ctx, target, sslctx) from None
    finally:
        await _close(client)


async def key_ttls(ctx: ProbeContext[RedisTarget]) -> RedisKeySample:
    """``SCAN MATCH pattern`` (bounded by ``sample`` keys and the time budget) and each key's PTTL."""
    target = ctx.target
    keys_spec: RedisKeys = ctx.item
    password = target.password.reveal() if target.password else None
    sslctx = await client_context(ctx, target)
    client = _client(ctx, target, sslctx, username=_reveal_username(target), password=password)
    deadline = time.monotonic() + ctx.timeout * SCAN_BUDGET
    sampled = without_ttl = 0
    ttls: list[float] = []
    cut: str | None = None
    complete = False
    count = min(1000, max(100, keys_spec.sample))
    try:
        ctx.phase = f"connecting to {target.where}"
        await client.ping()
        cursor: int = 0
        while True:
            ctx.phase = f"SCAN MATCH {keys_spec.pattern}"
            cursor, keys = await client.scan(cursor, match=keys_spec.pattern, count=count)
            keys = list(keys)[: keys_spec.sample - sampled]
            if keys:
                ctx.phase = f"PTTL of {len(keys)} keys matching {keys_spec.pattern}"
                pipe = client.pipeline(transaction=False)
                for key in keys:
                    pipe.pttl(key)
                for ttl_ms in await pipe.execute():
                    if ttl_ms == -2:  # expired or deleted since SCAN saw it
                        continue
                    sampled += 1
                    if ttl_ms == -1:
                        without_ttl += 1
                    else:
                        ttls.append(ttl_ms / 1000.0)
            if int(cursor) == 0:
                complete = True
                break
            if sampled >= keys_spec.sample:
                cut = f"stopped at the sample size of {keys_spec.sample} keys"
                break
            if time.monotonic() > deadline:
                cut = f"stopped after {ctx.timeout * SCAN_BUDGET:.1f} s of scanning"
                break
    except rx.AuthenticationError as exc:
        raise RedisAuthRejected(
            f"cannot read keys on {target.where}: authentication failed for user {target.user_label} "
            f"({_short(exc)})"
        ) from None
    except Exception as exc:  # noqa: BLE001
        raise await _could_not_see(exc, ctx, target, sslctx) from None
    finally:
        await _close(client)
    return RedisKeySample(
        pattern=keys_spec.pattern,
        sampled=sampled,
        without_ttl=without_ttl,
        shortest_ttl_s=min(ttls) if ttls else None,
        longest_ttl_s=max(ttls) if ttls else None,
        complete=complete,
        cut_reason=cut,
    )
