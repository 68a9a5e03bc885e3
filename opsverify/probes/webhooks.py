"""Webhook probes: deliveries signed right, signed wrong, unsigned, without the tenant header, replayed
(dated ``replay_age_s`` ago, when the target signs a timestamp) and signed with the retired secret.

Each variant is its own probe (one request). The body is the target's ``body``, byte for byte; the
signature is the HMAC of exactly those bytes. The receiver's answers are data; only a receiver that
cannot be reached raises.

Example::

    answer = await deliver(ctx, "signed")      # ctx.target is a WebhookTarget
    answer.status, answer.body
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from opsverify.config.webhooks import WebhookTarget
from opsverify.engine import ProbeContext
from opsverify.probes.api_client import call, client, snippet
from opsverify.safety import delivery_class

Variant = Literal["signed", "wrong-signature", "unsigned", "no-tenant", "replayed", "retired-secret"]


@dataclass
class Delivery:
    """How the receiver answered one delivery."""

    variant: str
    status: int
    body: str = ""

    @property
    def shown(self) -> str:
        return f"HTTP {self.status}" + (f" ({self.body})" if self.body else "")


def signed_bytes(target: WebhookTarget, body: bytes, timestamp: int | None) -> bytes:
    """What the HMAC covers: the body, or ``signed_payload`` with the timestamp when one is sent."""
    if target.timestamp_header is None or timestamp is None:
        return body
    head, _, tail = target.signed_payload.partition("{body}")
    return head.format(timestamp=timestamp).encode() + body + tail.format(timestamp=timestamp).encode()


def signature(target: WebhookTarget, secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value for ``body`` (sent at ``timestamp``) in the target's format."""
    digest = hmac.new(secret, signed_bytes(target, body, timestamp), target.algorithm).digest()
    return target.signature_format.format(
        algorithm=target.algorithm, hex=digest.hex(), base64=base64.b64encode(digest).decode()
    )


def request_headers(target: WebhookTarget, variant: Variant, now: float | None = None) -> dict[str, str]:
    """The headers of one variant (a secret is revealed only when the variant signs with it)."""
    body = target.body.encode()
    headers = {"content-type": target.content_type, "x-opsverify-check": variant}
    if target.tenant_header and variant != "no-tenant":
        headers[target.tenant_header] = target.tenant
    timestamp: int | None = None
    if target.timestamp_header is not None:
        timestamp = int(time.time() if now is None else now)
        if variant == "replayed":
            timestamp -= target.replay_age_s
        headers[target.timestamp_header] = str(timestamp)
    key: bytes | None = None
    if variant in ("signed", "no-tenant", "replayed"):
        key = target.secret.reveal().strip().encode()
    elif variant == "retired-secret" and target.retired_secret is not None:
        key = target.retired_secret.reveal().strip().encode()
    elif variant == "wrong-signature":
        key = secrets.token_bytes(32)
    if key is not None:
        headers[target.signature_header] = signature(target, key, body, timestamp)
    return headers


async def deliver(ctx: ProbeContext[WebhookTarget], variant: Variant) -> Delivery:
    """POST the target's body as ``variant`` and describe the answer."""
    target = ctx.target
    headers = request_headers(target, variant)
    async with client(ctx, target) as http:
        response = await call(ctx, http, "POST", target.url, content=target.body.encode(), headers=headers,
                              what=f"{variant} delivery", safety=delivery_class(target.url, target.dry_run).safety)
    return Delivery(variant, response.status, snippet(response, 80))
