"""The server's verdict on the client certificate, read without the race a protocol client runs into.

Under TLS 1.3 a server reads the client's certificate after the client's handshake has finished, so
its refusal (``certificate expired``, ``unknown ca``, ``certificate required``) is an alert that
arrives later. A client that sends its first request right after the handshake (nats-py's
``CONNECT``, librdkafka's ``ApiVersions``) reaches a server that has already refused the certificate
and closes with that data unread; the kernel answers with a reset, and the client may lose the
connection before it reads the alert. The connection is then merely "lost" or "down", and the
refusal nobody read would be reported without its reason.

:func:`certificate_verdict` asks again the quiet way: TCP, the server's plaintext greeting line when
the protocol has one (NATS's ``INFO``), the TLS handshake with the same context, then nothing sent,
only a read: the server's alert arrives as an alert, never behind a reset. A quiet connection or
data within ``SETTLE_S`` means the certificate was accepted.

Example::

    alert = await certificate_verdict("127.0.0.1", 4222, sslctx, timeout=2.0, greeting=b"INFO")
    # "certificate expired", or None
"""

from __future__ import annotations

import asyncio
import ssl

from opsverify.client_certs import certificate_alert

SETTLE_S = 1.0  # how long a server has to send its alert after the handshake
GREETING_WAIT_S = 0.5  # a server that sends no greeting within this expects TLS first


async def certificate_verdict(
    host: str, port: int, context: ssl.SSLContext, *, timeout: float, greeting: bytes | None = None
) -> str | None:
    """The alert the server at ``host:port`` sends about the client certificate in ``context``, or
    ``None`` when it sent none (accepted, or the question could not be asked within ``timeout``).

    ``greeting``: the start of a plaintext line the server sends before TLS (NATS: ``b"INFO"``); a
    server that sends none within ``GREETING_WAIT_S`` is taken to expect TLS first."""
    try:
        return await asyncio.wait_for(_ask(host, port, context, greeting), timeout)
    except (asyncio.TimeoutError, TimeoutError, OSError):
        return None


async def _ask(host: str, port: int, context: ssl.SSLContext, greeting: bytes | None) -> str | None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        if greeting is not None:
            try:
                first = await asyncio.wait_for(reader.readline(), GREETING_WAIT_S)
            except (asyncio.TimeoutError, TimeoutError):
                first = b""
            if first and not first.startswith(greeting):
                return None  # not the server that protocol expects: nothing to learn here
        try:
            await writer.start_tls(context, server_hostname=host)
        except ssl.SSLCertVerificationError:
            return None  # the server's certificate is the question here, not ours: the connect error says so
        except ssl.SSLError as exc:
            return certificate_alert(exc)
        try:
            await asyncio.wait_for(reader.read(1), SETTLE_S)
        except ssl.SSLError as exc:
            return certificate_alert(exc)
        except (asyncio.TimeoutError, TimeoutError, ConnectionResetError):
            return None
        return None
    finally:
        await close_quietly(writer)


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    """Close a stream, waiting at most 0.5 s, whatever the peer does (closing is best effort)."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 0.5)
    except Exception:  # noqa: BLE001 - a peer that already reset or never answers the close
        pass
