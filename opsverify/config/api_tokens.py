"""``api_tokens:`` section: third-party API tokens checked through their provider's introspection endpoint.

Its keys: ``docs/environment/reference.md#api_tokens``;
an example and its checks: ``docs/environment/tokens.md``.

Paths use the ``json:`` path syntax (``result.expires_on``, ``items[0].exp``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from opsverify.config.base import Target, section
from opsverify.config.secrets import SecretRef
from opsverify.config.thresholds import MinDays
from opsverify.config.values import HttpUrl
from opsverify.errors import JsonPathError
from opsverify.jsonpath import parse_single

CLOUDFLARE_VERIFY = "https://api.cloudflare.com/client/v4/user/tokens/verify"


class ApiTokenTarget(Target):
    """One token, the endpoint that introspects it, and where its answer says "active" and "expires"."""

    verify_url: HttpUrl = Field(pattern=r"^https?://[^/]+(/.*)?$")
    method: Literal["GET", "POST"] = "GET"
    token: SecretRef
    header: str = Field(default="authorization", min_length=1)
    prefix: str = "Bearer "
    active_path: str = "result.status"
    active_value: Any = "active"
    expires_path: str | None = "result.expires_on"
    id_path: str | None = "result.id"
    issued_at: datetime | date | None = None
    min_days: MinDays | None = None
    ca_bundle: str | None = Field(default=None, description="PEM file of the CA the server's certificate must "
                                  "chain to (relative to this file); default: the system trust store")
    verify_tls: bool = Field(default=True, description="false: do not verify the server's certificate")

    @field_validator("active_path", "expires_path", "id_path")
    @classmethod
    def _valid_path(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_single(value)
            except JsonPathError as exc:
                raise ValueError(str(exc)) from None
        return value

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)
        if self.min_days is None:
            self.min_days = defaults.credential_min_days


section(
    "api_tokens",
    ApiTokenTarget,
    system="api_tokens",
    doc="Third-party API tokens: active according to the provider's verify endpoint, days to expiry",
)
