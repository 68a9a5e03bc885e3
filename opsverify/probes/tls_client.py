"""Mutual-TLS probe of a ``tls:`` target: does the server accept the client certificate it is given.

The handshake presents ``client_cert`` (server verification off: whether the *server's* certificate
is trusted is the chain check's question, not this one's). Under TLS 1.2 a refused client
certificate fails the handshake itself; under TLS 1.3 the server reads the client's certificate
after the client has finished, so its refusal arrives as an alert on the first read. The probe
therefore waits up to ``SETTLE_S`` for that alert after the handshake: an alert (``certificate
expired``, ``unknown ca``, ``certificate required`` ...) is a refusal with the server's reason; a
quiet connection, or data, is acceptance.

Example::

    seen = await client_handshake(ctx)
    seen.accepted, seen.reason, seen.certificate.days_left
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

from opsverify.client_certs import ClientCertInfo, read_client_certificate
from opsverify.config.tls import TlsTarget
from opsverify.engine import ProbeContext
from opsverify.errors import ProbeTimeout, Unreachable
from opsverify.net.client_cert_verdict import close_quietly
from opsverify.net.tls import TlsSettings, base_dir, context_for

SETTLE_S = 1.0


@dataclass
class ClientHandshake:
    """The client certificate presented and how the server answered it."""

    certificate: ClientCertInfo
    accepted: bool
    reason: str = ""
    protocol: str = ""


def _alert(exc: BaseException) -> str | None:
    """The server's alert in an ``ssl.SSLError`` (``certificate expired``), if it is one."""
    reason = getattr(exc, "reason", None) or ""
    if "ALERT" not in reason.upper():
        return None
    return reason.lower().split("alert_", 1)[-1].replace("_", " ")


async def client_handshake(ctx: ProbeContext[TlsTarget]) -> ClientHandshake:
    """Handshake with the target presenting its client certificate; read the server's verdict."""
    target = ctx.target
    assert target.client_cert is not None
    base = base_dir(ctx.env)
    info = read_client_certificate(target.client_cert, base)
    settings = TlsSettings(None, False, base, target.client_cert, target.client_key)
    sslctx = await asyncio.to_thread(context_for, ctx.engine, settings)  # loading a key: not on the loop
    where = f"{target.host}:{target.port}"
    ctx.phase = f"TLS handshake with {where} presenting {info.subject}"
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port, ssl=sslctx, server_hostname=target.sni,
                                    ssl_handshake_timeout=max(0.1, ctx.remaining())),
            max(0.1, ctx.remaining()),
        )
    except (asyncio.TimeoutError, TimeoutError):
        raise ProbeTimeout(f"TLS handshake with {where} stalled for {ctx.timeout:g} s") from None
    except ssl.SSLError as exc:
        alert = _alert(exc)
        if alert is None:
            raise Unreachable(f"TLS handshake with {where} failed: {exc.reason or exc}") from None
        return ClientHandshake(info, False, f"the server refused the handshake: {alert}")
    except OSError as exc:
        raise Unreachable(f"cannot connect to {where}: {exc.strerror or exc}") from None
    ssl_object = writer.get_extra_info("ssl_object")
    protocol = ssl_object.version() if ssl_object else ""
    ctx.phase = f"waiting for {where}'s verdict on the client certificate"
    try:
        data = await asyncio.wait_for(reader.read(1), min(SETTLE_S, max(0.05, ctx.remaining())))
        accepted = bool(data)
        reason = "" if data else "the server closed the connection after the handshake without a reason"
    except (asyncio.TimeoutError, TimeoutError):
        accepted, reason = True, ""
    except ssl.SSLError as exc:
        alert = _alert(exc)
        accepted, reason = False, f"the server refused the certificate: {alert or exc.reason or exc}"
    except (ConnectionResetError, BrokenPipeError):
        accepted, reason = False, "the server reset the connection after the handshake"
    finally:
        await close_quietly(writer)
    return ClientHandshake(info, accepted, reason, protocol or "")
