"""``restate:`` section: a Restate server (self-hosted or Restate Cloud) through its admin and ingress APIs.

One target is one Restate environment: admin API (health, version, services, deployments),
ingress (health, a smoke invocation), the bearer token an auth proxy in front demands (Restate
Cloud and its tunnels have one; the open-source server does not), and the token's age.

Its keys: ``docs/environment/reference.md#restate``;
an example and its checks: ``docs/environment/restate.md``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import total_ordering
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from opsverify.config.base import NAME_MAX, NAME_PATTERN, Strict, Target, section, threshold_or
from opsverify.config.secrets import SecretRef
from opsverify.config.thresholds import MaxDays, MaxMs, Threshold
from opsverify.config.values import HttpUrl, shown

URL_PATTERN = r"^https?://[^\s/]+"
_SEMVER = re.compile(
    r"^v?(?P<major>\d+)(?:\.(?P<minor>\d+))?(?:\.(?P<patch>\d+))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


@total_ordering
@dataclass(frozen=True)
class SemVer:
    """A semantic version (``1.7.12``, ``1.8.0-rc.1``); missing minor/patch count as 0.

    Ordered as semver.org says: numerically per part, and a pre-release below its release.

    Example::

        SemVer.parse("1.10.0") > SemVer.parse("1.7.12")      # True (a text compare says False)
        SemVer.parse("1.8.0-rc.1") < SemVer.parse("1.8.0")   # True
    """

    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer:
        """Parse ``text``; raises ``ValueError`` when it is not a version."""
        match = _SEMVER.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a version like 1.7.0 or 1.8.0-rc.1")
        pre = tuple(match["pre"].split(".")) if match["pre"] else ()
        return cls(int(match["major"]), int(match["minor"] or 0), int(match["patch"] or 0), pre, text.strip())

    def _key(self) -> tuple[Any, ...]:
        # a release sorts after all of its pre-releases; numeric identifiers before alphanumeric ones
        pre_key = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre_key)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return self.text or f"{self.major}.{self.minor}.{self.patch}" + (f"-{'.'.join(self.pre)}" if self.pre else "")


class RestateService(Strict):
    """A service that must be registered (``GET /services``), with these handlers at least."""

    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX, description="the service name as registered, e.g. Greeter")
    handlers: list[str] = Field(default_factory=list, description="handlers it must have")
    type: Literal["Service", "VirtualObject", "Workflow"] | None = Field(
        default=None, description="expected service type (the admin API's `ty`)"
    )


class RestateInvocation(Strict):
    """One smoke call through the ingress: ``POST <ingress>/<service>[/<key>]/<handler>``.

    ``input`` is sent as JSON (no body when it is not given); ``expect`` is the JSON value the
    handler must return (compared exactly), ``expect_contains`` a text the response body must contain.
    """

    name: str = Field(default="", description="item id in reports; default <service>.<handler>")
    service: str = Field(min_length=1)
    handler: str = Field(min_length=1)
    key: str | None = Field(default=None, description="the key of a virtual object or workflow")
    input: Any = None
    expect: Any = None
    expect_contains: str | None = None
    status: int = Field(default=200, ge=100, le=599)
    idempotency_key: str | None = None

    @model_validator(mode="after")
    def _named(self) -> RestateInvocation:
        if not self.name:
            self.name = f"{self.service}.{self.handler}"
        if len(self.name) > NAME_MAX or not re.match(NAME_PATTERN, self.name):
            raise ValueError(f"invocation name {shown(self.name)} must match {NAME_PATTERN}, "
                             f"at most {NAME_MAX} characters")
        return self

    @property
    def sends_input(self) -> bool:
        return "input" in self.model_fields_set

    @property
    def expects_json(self) -> bool:
        return "expect" in self.model_fields_set

    @property
    def path(self) -> str:
        """``Greeter/greet`` or ``Cart/<key>/ping`` (each part URL-quoted)."""
        from urllib.parse import quote

        parts = [self.service, *([self.key] if self.key is not None else []), self.handler]
        return "/".join(quote(part, safe="") for part in parts)

    @property
    def call(self) -> str:
        """How the call reads in messages: ``Greeter/greet("Ada")``."""
        import json

        shown = json.dumps(self.input) if self.sends_input else ""
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return f"{self.path}({shown})"


class RestateTarget(Target):
    """A Restate environment: its admin API, its ingress and the token an auth proxy in front demands."""

    admin_url: HttpUrl | None = Field(default=None, pattern=URL_PATTERN, description="admin API base URL (port 9070)")
    ingress_url: HttpUrl | None = Field(default=None, pattern=URL_PATTERN, description="ingress base URL (port 8080)")
    admin_health_url: HttpUrl | None = Field(default=None, pattern=URL_PATTERN, description="default <admin_url>/health")
    ingress_health_url: HttpUrl | None = Field(
        default=None, pattern=URL_PATTERN, description="default <ingress_url>/restate/health"
    )
    tunnel_health_url: HttpUrl | None = Field(
        default=None, pattern=URL_PATTERN,
        description="a Restate Cloud tunnel's health URL: https://tunnel.<region>.restate.cloud/<env-id>/<tunnel>/health",
    )
    token: SecretRef | None = Field(default=None, description="bearer token sent on every request")
    previous_token: SecretRef | None = Field(default=None, description="the token the current one replaced")
    token_issued_at: dt.datetime | dt.date | None = Field(
        default=None, description="when the current token was issued (date, or date-time; UTC if no zone)"
    )
    max_token_age_days: MaxDays | None = None
    ca_bundle: str | None = Field(default=None, description="PEM file of the CA the server's certificate must "
                                  "chain to (relative to this file); default: the system trust store")
    verify_tls: bool = Field(default=True, description="false: do not verify the server's certificate")
    max_latency_ms: MaxMs | None = Field(default=None, description="latency budget; default: defaults.http_latency_ms")
    min_version: str | None = None
    services: list[RestateService] = Field(default_factory=list)
    invocations: list[RestateInvocation] = Field(default_factory=list)

    @field_validator("admin_url", "ingress_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("min_version")
    @classmethod
    def _valid_version(cls, value: str | None) -> str | None:
        if value is not None:
            SemVer.parse(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RestateTarget:
        if not (self.admin_health or self.ingress_health or self.tunnel_health_url):
            raise ValueError(
                "give at least one of admin_url, ingress_url, admin_health_url, ingress_health_url, tunnel_health_url"
            )
        needs_admin = [k for k, used in (("min_version", self.min_version), ("services", self.services)) if used]
        if needs_admin and not self.admin_url:
            raise ValueError(f"{' and '.join(needs_admin)} need admin_url")
        if self.invocations and not self.ingress_url:
            raise ValueError("invocations need ingress_url")
        if self.previous_token is not None and self.token is None:
            raise ValueError("previous_token needs token (the one that replaced it)")
        if self.token is not None and not self.auth_urls:
            raise ValueError("token checks need admin_url, ingress_url or ingress_health_url")
        for key in ("services", "invocations"):
            names = [item.name for item in getattr(self, key)]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{key}: duplicate name {dupes[0]!r}")
        return self

    # -- where to send what ------------------------------------------------------------------------
    @property
    def admin_health(self) -> str | None:
        """The admin health URL: ``admin_health_url``, else ``<admin_url>/health``."""
        return self.admin_health_url or (f"{self.admin_url}/health" if self.admin_url else None)

    @property
    def ingress_health(self) -> str | None:
        """The ingress health URL: ``ingress_health_url``, else ``<ingress_url>/restate/health``."""
        return self.ingress_health_url or (f"{self.ingress_url}/restate/health" if self.ingress_url else None)

    def admin(self, path: str) -> str:
        """``<admin_url>/<path>``."""
        assert self.admin_url is not None
        return f"{self.admin_url}/{path.lstrip('/')}"

    @property
    def auth_urls(self) -> dict[str, str]:
        """Where the token checks knock: admin ``/version`` and the ingress health endpoint."""
        urls: dict[str, str] = {}
        if self.admin_url:
            urls["admin"] = self.admin("/version")
        if self.ingress_health:
            urls["ingress"] = self.ingress_health
        return urls

    @property
    def issued_at(self) -> dt.datetime | None:
        """``token_issued_at`` as an aware UTC date-time (a date is its midnight UTC)."""
        value = self.token_issued_at
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)
        self.max_latency_ms = threshold_or(self.max_latency_ms, defaults.http_latency_ms)
        self.max_token_age_days = threshold_or(
            self.max_token_age_days, Threshold(critical=float(defaults.max_credential_age_days))
        )


section(
    "restate",
    RestateTarget,
    system="restate",
    doc="Restate: admin/ingress/tunnel health, version, services, deployments (Restate's own discovery), "
    "a smoke invocation, bearer token enforcement and age",
)
