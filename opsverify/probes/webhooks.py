"""Webhook probes: deliveries signed right, signed wrong, unsigned, and without the tenant header.

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
from dataclasses import dataclass
from typing import Any, Literal

from opsverify.config.webhooks import WebhookTarget
from opsverify.engine import ProbeContext
from opsverify.probes.api_client import call, client, snippet
from opsverify.safety import delivery_class

Variant = Literal["signed", "wrong-signature", "unsigned", "no-tenant"]


@dataclass
class Delivery:
    """How the receiver answered one delivery."""

    variant: str
    status: int
    body: str = ""

    @property
    def shown(self) -> str:
        return f"HTTP {self.status}" + (f" ({self.body})" if self.body else "")


def signature(target: WebhookTarget, secret: bytes, body: bytes) -> str:
    """The signature header value for ``body`` in the target's format."""
    digest = hmac.new(secret, body, target.algorithm).digest()
    return target.signature_format.format(
        algorithm=target.algorithm, hex=digest.hex(), base64=base64.b64encode(digest).decode()
    )


def request_headers(target: WebhookTarget, variant: Variant) -> dict[str, str]:
    """The headers of one variant (the secret is revealed only when the variant signs with it)."""
    body = target.body.encode()
    headers = {"content-type": target.content_type, "x-opsverify-check": variant}
    if target.tenant_header and variant != "no-tenant":
        headers[target.tenant_header] = target.tenant
    if variant in ("signed", "no-tenant"):
        headers[target.signature_header] = signature(target, target.secret.reveal().strip().encode(), body)
    elif variant == "wrong-signature":
        headers[target.signature_header] = signature(target, secrets.token_bytes(32), body)
    return headers


async def deliver(ctx: ProbeContext[Any], variant: Variant) -> Delivery:
    """POST the target's body as ``variant`` and describe the answer."""
    target: WebhookTarget = ctx.target
    headers = request_headers(target, variant)
    async with client(ctx, target) as http:
        response = await call(ctx, http, "POST", target.url, content=target.body.encode(), headers=headers,
                              what=f"{variant} delivery", safety=delivery_class(target.url, target.dry_run).safety)
    return Delivery(variant, response.status, snippet(response, 80))
