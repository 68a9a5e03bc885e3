"""``webhooks:`` section: HMAC-signed inbound webhook receivers.

The checker sends four requests with the same body: correctly signed (must be accepted), signed
with a wrong secret, without the signature header, and correctly signed but without the tenant header
(each must be refused with a 4xx: a 5xx is a receiver that crashed, not one that refused). A real
delivery is recorded by the receiver, so these checks are ``mutating``; a receiver that only verifies
(a dry-run endpoint) is declared with ``dry_run: true``: its deliveries are the checks' dry-run form and
count as ``read_only`` (the one POST a read-only check sends, and only to such a receiver).

The signature is ``signature_format`` with ``{algorithm}``, ``{hex}`` and ``{base64}`` replaced by the
HMAC (of the raw body, with ``secret``) - ``sha256={hex}`` is GitHub's and OmertaOS's form.

Replay protection (``timestamp_header`` set): every delivery carries the Unix time in that header and
the HMAC covers ``signed_payload`` (default ``{timestamp}.{body}``, Stripe's and Slack's form), so a
captured delivery cannot be re-dated. One more delivery is then sent as a replay would arrive: the
same body, signed correctly, dated ``replay_age_s`` ago (past the receiver's tolerance); it must be
refused. ``retired_secret`` is the secret a rotation retired: a delivery signed with it must be
refused once the rotation is done (``after``, or no phase), and accepted before and during the overlap.

Its keys: ``docs/environment/reference.md#webhooks``;
an example and its checks: ``docs/environment/webhooks.md``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from opsverify.config.base import Target, section
from opsverify.config.secrets import SecretRef
from opsverify.config.values import HttpStatus, HttpUrl

ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")


class WebhookTarget(Target):
    """An inbound webhook receiver and how a delivery to it must be signed."""

    url: HttpUrl = Field(pattern=r"^https?://")
    ca_bundle: str | None = Field(default=None, description="PEM file of the CA the server's certificate must "
                                  "chain to (relative to this file); default: the system trust store")
    verify_tls: bool = Field(default=True, description="false: do not verify the server's certificate")
    secret: SecretRef
    algorithm: str = "sha256"
    signature_header: str = Field(default="x-omerta-signature", pattern=r"^[A-Za-z0-9-]+$")
    signature_format: str = "{algorithm}={hex}"
    tenant_header: str | None = Field(default="x-tenant-id", pattern=r"^[A-Za-z0-9-]+$")
    tenant: str = "opsverify-canary"
    body: str = '{"event": "opsverify.canary", "source": "opsverify"}'
    content_type: str = "application/json"
    accepted_status: list[HttpStatus] = Field(default_factory=lambda: [200, 201, 202, 204])
    dry_run: bool = Field(default=False, description="the endpoint only verifies: its deliveries are read_only")
    timestamp_header: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9-]+$",
        description="header with the delivery's Unix time, covered by the signature (replay protection)",
    )
    signed_payload: str = Field(
        default="{timestamp}.{body}", description="what is signed when timestamp_header is set"
    )
    replay_age_s: int = Field(
        default=600, ge=1, le=31 * 86400, description="age of the replayed delivery's timestamp, in seconds"
    )
    retired_secret: SecretRef | None = Field(
        default=None, description="a secret retired by a rotation: deliveries signed with it must be refused after it"
    )

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, value: str) -> str:
        value = value.lower()
        if value not in ALGORITHMS:
            raise ValueError(f"unknown HMAC algorithm {value!r} (known: {', '.join(ALGORITHMS)})")
        return value

    @field_validator("signature_format")
    @classmethod
    def _has_digest(cls, value: str) -> str:
        if "{hex}" not in value and "{base64}" not in value:
            raise ValueError("must contain {hex} or {base64}")
        try:
            value.format(algorithm="a", hex="b", base64="c")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"only {{algorithm}}, {{hex}} and {{base64}} may be used ({exc})") from None
        return value

    @field_validator("signed_payload")
    @classmethod
    def _covers_both(cls, value: str) -> str:
        if "{timestamp}" not in value or "{body}" not in value:
            raise ValueError("must contain {timestamp} and {body} (a signature without either can be replayed)")
        try:
            value.format(timestamp="1", body="b")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"only {{timestamp}} and {{body}} may be used ({exc})") from None
        return value

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)


section(
    "webhooks",
    WebhookTarget,
    system="webhooks",
    doc="HMAC-signed inbound webhooks: signed delivery accepted; wrong/missing signature, missing tenant, "
    "replayed delivery and retired secret refused",
)
