"""``http:`` section: HTTP(S) endpoints with status, latency, body, JSON and header expectations.

Its keys: ``docs/environment/reference.md#http``;
an example and its checks: ``docs/environment/http.md``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from opsverify.config.base import Target, section, threshold_or
from opsverify.config.secrets import SecretRef
from opsverify.config.thresholds import MaxMs
from opsverify.config.tls import ClientCertificate
from opsverify.config.values import HttpStatus, HttpUrl
from opsverify.errors import JsonPathError
from opsverify.jsonpath import Each, parse


def check_path(path: str, *, absent: bool = False) -> None:
    """Refuse a JSON path that does not parse (or, for ``json_absent``, ends in a wildcard)."""
    try:
        parts = parse(path)
    except JsonPathError as exc:
        raise ValueError(f"{path!r}: {exc}") from None
    if absent and isinstance(parts[-1], Each):
        raise ValueError(f"{path!r}: an absent path must end in a key or an index, not {parts[-1]}")


class HeaderValue(SecretRef):
    """A request header whose value comes from a secret reference, after an optional ``prefix``.

    With ``basic_user`` the secret is that user's password and the header is HTTP Basic
    authentication: ``Basic base64(<basic_user>:<secret>)``.
    """

    prefix: str = Field(default="", description="text sent before the secret, e.g. \"Bearer \"")
    basic_user: str | None = Field(default=None, min_length=1, max_length=255, pattern=r"^[^:\r\n]+$",
                                   description="send 'Basic base64(<basic_user>:<secret>)' (HTTP Basic auth)")


class HttpTarget(Target, ClientCertificate):
    """An HTTP(S) endpoint and what a healthy answer looks like."""

    url: HttpUrl = Field(pattern=r"^https?://", description="the URL to request")
    method: str = Field(default="GET", pattern=r"^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$",
                        description="a method other than GET, HEAD or OPTIONS makes the checks mutating")
    status: HttpStatus | list[HttpStatus] = Field(default=200,
                                                  description="the expected status code, or a list of them")
    max_latency_ms: MaxMs | None = Field(default=None, description="latency budget; default: defaults.http_latency_ms")
    body_contains: str | None = Field(default=None, description="text the body must contain")
    body_not_contains: list[str] | None = Field(default=None, description="text that must not appear in the body")
    json_fields: dict[str, Any] | None = Field(default=None, alias="json",
                                               description="JSON path -> value the body must have (a.b[0].c, a[*].b)")
    json_absent: list[str] | None = Field(default=None, description="JSON paths that must not exist in the body")
    headers: dict[str, str | None] | None = Field(
        default=None, description="response headers that must be present, each with text it must contain (null: any)")
    request_headers: dict[str, str | HeaderValue] = Field(default_factory=dict)
    body: str | None = Field(default=None, description="request body to send (with a method that takes one)")
    ca_bundle: str | None = Field(default=None, description="PEM file of the CA the server's certificate must "
                                  "chain to (relative to this file); default: the system trust store")
    verify_tls: bool = Field(default=True, description="false: do not verify the server's certificate")
    follow_redirects: bool = Field(default=False,
                                   description="follow redirects; false: a 3xx that is not an expected status fails")

    @field_validator("status")
    @classmethod
    def _valid_status(cls, value: int | list[int]) -> int | list[int]:
        codes = value if isinstance(value, list) else [value]
        if not codes or any(not 100 <= c <= 599 for c in codes):
            raise ValueError("HTTP status codes are between 100 and 599")
        return value

    @field_validator("body_not_contains", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("body_not_contains")
    @classmethod
    def _no_empty_text(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or any(not text for text in value)):
            raise ValueError("give at least one non-empty text (an empty text is in every body)")
        return value

    @field_validator("json_fields")
    @classmethod
    def _valid_paths(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for path in value or {}:
            check_path(path)
        return value

    @field_validator("json_absent")
    @classmethod
    def _valid_absent_paths(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("list at least one JSON path that must be absent")
        for path in value or []:
            check_path(path, absent=True)
        return value

    @property
    def expected_statuses(self) -> list[int]:
        return self.status if isinstance(self.status, list) else [self.status]

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)
        self.max_latency_ms = threshold_or(self.max_latency_ms, defaults.http_latency_ms)


section("http", HttpTarget, doc="HTTP(S) endpoints: status, latency budget, body, JSON fields, headers")
