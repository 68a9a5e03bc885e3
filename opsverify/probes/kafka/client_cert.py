"""Why a Kafka TLS listener would not talk to the checker: its verdict on the client certificate.

librdkafka reports a refused client certificate as a transport error with OpenSSL's text in it
("Receive failed: error:0A000415 ... alert certificate expired"), or, when under TLS 1.3 the listener
reset the connection (librdkafka had already sent ``ApiVersions``) before the alert was read, only as
"all brokers are down". On a TLS target the alert is taken from the error, or else the first bootstrap
address is asked again the quiet way (:mod:`opsverify.net.client_cert_verdict`); either way a refusal
is reported as one (:class:`~opsverify.errors.ClientCertRefused`), with the certificate and the
server's reason, and the way back is the checker's own certificate, not the network.

Example::

    try:
        found = await ctx.run_sync(_metadata_sync, admin, budget)
    except Unreachable as exc:
        await raise_if_certificate_refused(ctx, exc)
        raise
"""

from __future__ import annotations

import asyncio

from opsverify.client_certs import certificate_alert, expiry_hint
from opsverify.config.kafka import KafkaTarget
from opsverify.engine import ProbeContext
from opsverify.errors import ClientCertRefused, Unreachable
from opsverify.net.client_cert_verdict import certificate_verdict
from opsverify.net.tls import TlsSettings, base_dir, context_for

DEFAULT_PORT = 9092


def _first_bootstrap(target: KafkaTarget) -> tuple[str, int]:
    first = target.bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":") if ":" in first else (first, "", "")
    return host.strip("[]") or first, int(port) if port.isdigit() else DEFAULT_PORT


async def raise_if_certificate_refused(ctx: ProbeContext[KafkaTarget], exc: Unreachable) -> None:
    """Raise :class:`ClientCertRefused` when the target speaks TLS and its listener refuses the
    checker's client certificate (or demands one it was not given); return otherwise."""
    target = ctx.target
    if not target.protocol.endswith("SSL") or isinstance(exc, ClientCertRefused):
        return
    host, port = _first_bootstrap(target)
    base = base_dir(ctx.env)
    alert = certificate_alert(exc)  # librdkafka read the alert itself
    if alert is None:
        settings = TlsSettings(target.ca_bundle, True, base, target.client_cert, target.client_key)
        try:
            context = await asyncio.to_thread(context_for, ctx.engine, settings)  # loading a key: not on the loop
        except Exception:  # noqa: BLE001 - a context that cannot be built is the client's own error, already raised
            return
        ctx.phase = f"asking {host}:{port} for its verdict on the client certificate"
        alert = await certificate_verdict(host, port, context, timeout=max(0.2, ctx.remaining()))
    if alert is None:
        return
    shown = f"client certificate {target.client_cert}" if target.client_cert else "no client certificate"
    raise ClientCertRefused(
        f"cannot reach Kafka at {target.bootstrap}: the TLS listener at {host}:{port} refused the handshake "
        f"({alert}) with {shown}{expiry_hint(target, base)}"
    ) from None
