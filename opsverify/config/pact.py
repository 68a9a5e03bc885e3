"""``pact:`` section: a Pact Broker - reachable (heartbeat, latency) and can-i-deploy per release.

Its keys: ``docs/environment/reference.md#pact``;
an example and its checks: ``docs/environment/contracts.md``.

Each ``can_i_deploy`` entry asks the broker's matrix whether that version is compatible with every
version already deployed to ``to_environment`` (what ``pact-broker can-i-deploy --to-environment``
asks). The entry's name (its id in reports) is ``<pacticipant>`` unless ``name`` is set.
"""

from __future__ import annotations

import os
import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from opsverify.config.base import NAME_MAX, NAME_PATTERN, Strict, Target, section
from opsverify.config.secrets import SecretRef
from opsverify.config.thresholds import MaxMs
from opsverify.config.values import HttpUrl, shown


class CanIDeploy(Strict):
    """One release question: may ``version`` of ``pacticipant`` go to ``to_environment``?"""

    name: str = Field(default="", description="id in reports (default: the pacticipant)")
    pacticipant: str = Field(min_length=1)
    version: str | None = Field(default=None, min_length=1)
    version_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    to_environment: str = Field(min_length=1)

    @model_validator(mode="after")
    def _one_version(self) -> CanIDeploy:
        if (self.version is None) == (self.version_env is None):
            raise ValueError("a can_i_deploy entry needs exactly one of 'version' or 'version_env'")
        if not self.name:
            self.name = self.pacticipant
        return self

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if value and (len(value) > NAME_MAX or not re.match(NAME_PATTERN, value)):
            raise ValueError(f"{shown(value)} is not a valid name (letters, digits, _ . -; at most {NAME_MAX})")
        return value

    def resolved_version(self) -> str | None:
        """The version asked about (``None`` when ``version_env`` is not set in this process)."""
        if self.version is not None:
            return self.version
        assert self.version_env is not None
        return os.environ.get(self.version_env) or None

    @property
    def version_label(self) -> str:
        return self.version if self.version is not None else f"${self.version_env}"


class PactTarget(Target):
    """A Pact Broker (or PactFlow) base URL and the releases to ask it about."""

    url: HttpUrl = Field(pattern=r"^https?://[^/]+(/.*)?$", description="the broker's base URL")
    token: SecretRef | None = Field(default=None, description="bearer token (PactFlow, or a broker behind auth)")
    ca_bundle: str | None = Field(default=None, description="PEM file of the CA the server's certificate must "
                                  "chain to (relative to this file); default: the system trust store")
    verify_tls: bool = Field(default=True, description="false: do not verify the server's certificate")
    max_latency_ms: MaxMs | None = Field(default=None, description="latency budget; default: defaults.http_latency_ms")
    can_i_deploy: list[CanIDeploy] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _unique(self) -> PactTarget:
        names = [c.name for c in self.can_i_deploy]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"can_i_deploy: duplicate name {dupes[0]!r} (set 'name' to tell them apart)")
        return self

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)
        if self.max_latency_ms is None:
            self.max_latency_ms = defaults.http_latency_ms


section(
    "pact",
    PactTarget,
    system="pact",
    doc="Pact Broker: heartbeat within a latency budget, can-i-deploy of a version to an environment",
)
