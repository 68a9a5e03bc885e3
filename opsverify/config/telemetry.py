"""``telemetry:`` section: an OTLP/HTTP ingestion endpoint that must take data with its key and refuse it without.

Its keys: ``docs/environment/reference.md#telemetry``;
an example and its checks: ``docs/environment/telemetry.md``.

Every check of this section sends one small log record (or span): they are ``mutating``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from opsverify.config.base import Target, section
from opsverify.config.secrets import SecretRef
from opsverify.config.values import HttpStatus, HttpUrl

REJECTED_DEFAULT = [401, 403]


class TelemetryTarget(Target):
    """An OTLP/HTTP endpoint, the header its ingestion key goes in, and the keys to try."""

    endpoint: HttpUrl = Field(pattern=r"^https?://[^/]+(/.*)?$", description="base URL of the OTLP/HTTP receiver")
    signal: Literal["logs", "traces"] = "logs"
    key_header: str = Field(default="authorization", min_length=1)
    key_prefix: str = ""
    key: SecretRef
    retired_key: SecretRef | None = None
    service_name: str = "opsverify-canary"
    rejected_statuses: list[HttpStatus] = Field(default_factory=lambda: list(REJECTED_DEFAULT))
    ca_bundle: str | None = Field(default=None, description="PEM file of the CA the server's certificate must "
                                  "chain to (relative to this file); default: the system trust store")
    verify_tls: bool = Field(default=True, description="false: do not verify the server's certificate")

    @field_validator("endpoint")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def path(self) -> str:
        """``/v1/logs`` or ``/v1/traces`` under the endpoint's own path."""
        return f"/v1/{self.signal}"

    @property
    def url(self) -> str:
        return self.endpoint + self.path


section(
    "telemetry",
    TelemetryTarget,
    system="telemetry",
    doc="OTLP/HTTP ingestion: accepted with the ingestion key, refused without it or with the retired key",
)
