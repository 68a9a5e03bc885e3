"""TLS for the Redis probes: the shared client context (with the client certificate), and the server's
verdict on that certificate when a connection fails.

The context is :func:`opsverify.net.tls.context_for` the target's settings (built once per run, off the
event loop): a client certificate whose key does not belong to it, or a key that cannot be read,
errors before any connection with a message naming the files. redis-py's connections get that context
(:func:`connection_class`) instead of building their own from file names, so a key held in an
environment variable works too.

A server that refuses the client certificate (TLS 1.3) does so after the client's handshake, with an
alert on the client's first read; a client that has already sent a command (AUTH, PING) may see a
connection reset instead, because the server closes with the command unread. When a connection fails,
:func:`refused_certificate` therefore asks again without sending anything
(:mod:`opsverify.net.client_cert_verdict`): a handshake, then up to 1 s for the server's alert
(``certificate expired``, ``unknown ca``, ``certificate required`` ...).

Example::

    sslctx = await client_context(ctx, target)          # None for redis://
    refusal = await refused_certificate(ctx, target, sslctx, exc)
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

from opsverify.client_certs import certificate_alert, expiry_hint
from opsverify.config.datastores import RedisTarget
from opsverify.engine import ProbeContext
from opsverify.net.client_cert_verdict import certificate_verdict
from opsverify.net.tls import TlsSettings, base_dir, context_for

if TYPE_CHECKING:
    import redis.asyncio as aredis
else:
    from opsverify.lazy import lazy_module

    aredis = lazy_module("redis.asyncio")

async def client_context(ctx: ProbeContext[RedisTarget], target: RedisTarget) -> ssl.SSLContext | None:
    """The shared TLS context for ``target`` (``None`` for ``redis://``); raises :class:`ClientCertUnusable`,
    :class:`SecretMissing` or :class:`Unreachable` (CA bundle) naming the file."""
    if not target.tls:
        return None
    context: ssl.SSLContext = await asyncio.to_thread(context_for, ctx.engine, TlsSettings.of(target, ctx.env))
    return context


def connection_class(context: ssl.SSLContext) -> Any:
    """A redis-py ``SSLConnection`` class whose connections use ``context``."""

    class PresetSSLConnection(aredis.SSLConnection):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.ssl_context.context = context

    return PresetSSLConnection


def _refusal(target: RedisTarget, base: str | None, alert: str) -> str:
    shown = f"client certificate {target.client_cert}" if target.client_cert else "no client certificate"
    return f"{target.where} refused the client certificate ({alert}); presented {shown}{expiry_hint(target, base)}"


async def _alert_after_handshake(ctx: ProbeContext[RedisTarget], target: RedisTarget, context: ssl.SSLContext) -> str | None:
    return await certificate_verdict(target.host, target.port, context, timeout=max(0.1, ctx.remaining()))


async def refused_certificate(ctx: ProbeContext[RedisTarget], target: RedisTarget, context: ssl.SSLContext | None,
                              exc: BaseException) -> str | None:
    """Why the server refused the client certificate when the failed connection ``exc`` was that refusal,
    else ``None``: ``"127.0.0.1:6380/0 refused the client certificate (unknown ca); presented client
    certificate certs/client.pem"``."""
    if context is None:
        return None
    root = exc.__cause__ or exc.__context__
    if isinstance(root, ssl.SSLCertVerificationError):
        return None
    alert = certificate_alert(exc)
    if alert is None:
        ctx.phase = f"TLS handshake with {target.where}, waiting for its verdict on the client certificate"
        alert = await _alert_after_handshake(ctx, target, context)
    return _refusal(target, base_dir(ctx.env), alert) if alert else None
