"""``http:`` section: HTTP(S) endpoints with status, latency, body, JSON and header expectations.

Example::

    http:
      - name: gateway
        url: https://gateway.staging.example.com/healthz
        status: 200                     # or [200, 204]
        max_latency_ms: {warn: 300, critical: 400}
        body_contains: ok
        json: {status: ok, "checks[0].healthy": true}
        headers: {content-type: application/json, x-request-id: null}   # null: must be present
        request_headers: {authorization: {env: GATEWAY_TOKEN, prefix: "Bearer "}}
        ca_bundle: certs/internal-ca.pem
        follow_redirects: false
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from opsverify.config.base import Target, section, threshold_or
from opsverify.config.secrets import SecretRef
from opsverify.config.thresholds import MaxMs
from opsverify.config.values import HttpStatus, HttpUrl


class HeaderValue(SecretRef):
    """A request header whose value comes from a secret reference, after an optional ``prefix``.

    With ``basic_user`` the secret is that user's password and the header is HTTP Basic
    authentication: ``Basic base64(<basic_user>:<secret>)``.
    """

    prefix: str = ""
    basic_user: str | None = Field(default=None, min_length=1, max_length=255, pattern=r"^[^:\r\n]+$",
                                   description="send 'Basic base64(<basic_user>:<secret>)' (HTTP Basic auth)")


class HttpTarget(Target):
    """An HTTP(S) endpoint and what a healthy answer looks like."""

    url: HttpUrl = Field(pattern=r"^https?://")
    method: str = Field(default="GET", pattern=r"^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$")
    status: HttpStatus | list[HttpStatus] = 200
    max_latency_ms: MaxMs | None = None
    body_contains: str | None = None
    json_fields: dict[str, Any] | None = Field(default=None, alias="json")
    headers: dict[str, str | None] | None = None
    request_headers: dict[str, str | HeaderValue] = Field(default_factory=dict)
    body: str | None = None
    ca_bundle: str | None = None
    verify_tls: bool = True
    follow_redirects: bool = False

    @field_validator("status")
    @classmethod
    def _valid_status(cls, value: int | list[int]) -> int | list[int]:
        codes = value if isinstance(value, list) else [value]
        if not codes or any(not 100 <= c <= 599 for c in codes):
            raise ValueError("HTTP status codes are between 100 and 599")
        return value

    @property
    def expected_statuses(self) -> list[int]:
        return self.status if isinstance(self.status, list) else [self.status]

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)
        self.max_latency_ms = threshold_or(self.max_latency_ms, defaults.http_latency_ms)


section("http", HttpTarget, doc="HTTP(S) endpoints: status, latency budget, body, JSON fields, headers")
