"""``vault:`` section: Vault / OpenBao servers - seal, HA role, raft, tokens, leases, KV drift, audit.

Durations (``min_ttl``, ``max_age``) are written as ``45s``, ``30m``, ``12h``, ``7d``, ``2w``,
``1h30m`` or a plain number of days (like the environment defaults ``credential_min_days`` and
``max_credential_age_days``), alone or as ``{warn: ..., critical: ...}``.

Its keys: ``docs/environment/reference.md#vault``;
an example and its checks: ``docs/environment/vault.md``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from opsverify.config.base import NAME_MAX, NAME_PATTERN, Strict, Target, section
from opsverify.config.secrets import SecretRef
from opsverify.config.thresholds import Judged, Threshold
from opsverify.config.values import HttpUrl

DAY_S = 86400.0
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY_S, "w": 7 * DAY_S}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def parse_duration(value: Any) -> float:
    """Seconds in ``value``: ``"90s"``, ``"1h30m"``, ``"7d"`` or a number of days."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of days or a text like 12h, 30m, 7d")
    if isinstance(value, (int, float)):
        return float(value) * DAY_S
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        parts = _PART.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            return sum(float(n) * _UNITS[u] for n, u in parts)
    raise ValueError(f"{value!r} is not a duration (use e.g. 45s, 30m, 12h, 7d, 1h30m or a number of days)")


def duration_threshold(value: Any) -> Any:
    """A threshold written with durations, as a :class:`Threshold` in seconds."""
    if value is None or isinstance(value, Threshold):
        return value
    if isinstance(value, dict):
        unknown = set(value) - {"warn", "critical"}
        if unknown:
            raise ValueError(f"unknown threshold key(s) {', '.join(sorted(unknown))} (use warn, critical)")
        if "critical" not in value:
            raise ValueError("a threshold needs a critical level")
        return {k: (parse_duration(v) if v is not None else None) for k, v in value.items()}
    return {"critical": parse_duration(value)}


CENTURY_S = 36_500 * DAY_S
MaxDuration = Annotated[
    Threshold | None, BeforeValidator(duration_threshold), AfterValidator(Judged("at_most", "s", high=CENTURY_S))
]
"""A threshold field written with durations, larger is worse (an age); stored in seconds."""
MinDuration = Annotated[
    Threshold | None, BeforeValidator(duration_threshold), AfterValidator(Judged("at_least", "s", high=CENTURY_S))
]
"""A threshold field written with durations, smaller is worse (a TTL left); stored in seconds."""


def days_threshold_in_seconds(days: Threshold | None) -> Threshold | None:
    """An environment default in days, converted to seconds."""
    if days is None:
        return None
    warn = days.warn * DAY_S if days.warn is not None else None
    return Threshold(warn=warn, critical=days.critical * DAY_S)


class VaultSeal(Strict):
    """What the seal should look like (``sys/seal-status``)."""

    type: str | None = Field(default=None, description="shamir, awskms, transit, pkcs11 ...")
    threshold: int | None = Field(default=None, ge=1, description="key shares needed to unseal (t)")
    shares: int | None = Field(default=None, ge=1, description="key shares in total (n)")


class VaultReplication(Strict):
    """Expected replication modes as ``sys/health`` reports them (disabled, primary, secondary ...)."""

    performance: str | None = Field(default=None,
                                    description="performance replication mode sys/health must report (disabled, "
                                                "primary, secondary)")
    dr: str | None = Field(default=None, description="disaster-recovery replication mode sys/health must report")


class VaultRaft(Strict):
    """Integrated storage: how many peers there must be, and which ones."""

    min_peers: int | None = Field(default=None, ge=1,
                                  description="raft peers there must be at least; default: the number of listed "
                                              "peers")
    peers: list[str] | None = Field(default=None, description="node ids that must be (and may be) peers")

    @property
    def expected_peers(self) -> int:
        """Peers the cluster should have: ``min_peers``, else the number of listed peers, else 1."""
        return self.min_peers or len(self.peers or []) or 1


class _Named(Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX)


class VaultToken(_Named):
    """A token whose TTL must not run out: by secret reference (looks itself up) or by accessor."""

    token: SecretRef | None = Field(default=None,
                                    description="the token itself (it looks itself up); or give accessor")
    accessor: str | None = Field(default=None, description="the token's accessor, looked up with the checker's token")
    min_ttl: MinDuration = Field(default=None,
                                 description="TTL that must be left; default: defaults.credential_min_days")
    renewable: bool | None = Field(default=None,
                                   description="whether the token must (true) or must not (false) be renewable")
    previous: SecretRef | None = Field(
        default=None, description="during a rotation: the token this one replaces (valid until the overlap ends, "
        "revoked after; see rotation: / --phase)",
    )


    @model_validator(mode="after")
    def _one_way_to_find_it(self) -> VaultToken:
        if (self.token is None) == (self.accessor is None):
            raise ValueError("a token needs exactly one of 'token' (a secret reference) or 'accessor'")
        return self


class VaultLease(_Named):
    """A lease (``lease_id``), or every lease under ``prefix``, that must have TTL left."""

    lease_id: str | None = Field(default=None, description="one lease; or give prefix")
    prefix: str | None = Field(default=None,
                               description="every lease under this prefix (judged by the one with the least TTL "
                                           "left)")
    min_ttl: MinDuration = Field(default=None, description="TTL that must be left; default {warn: 1h, critical: 10m}")
    renewable: bool | None = Field(default=None,
                                   description="whether the lease must (true) or must not (false) be renewable")


    @model_validator(mode="after")
    def _one_way_to_find_it(self) -> VaultLease:
        if (self.lease_id is None) == (self.prefix is None):
            raise ValueError("a lease needs exactly one of 'lease_id' or 'prefix'")
        if self.prefix is not None and not self.prefix.endswith("/"):
            self.prefix += "/"
        return self

    @property
    def label(self) -> str:
        return f"lease {self.lease_id}" if self.lease_id else f"leases under {self.prefix}"


class VaultSecret(_Named):
    """A KV version 2 secret that must have been rotated (written) within ``max_age``."""

    path: str = Field(min_length=1, description="the secret's path inside its KV version 2 mount")
    mount: str = Field(default="secret", description="the KV version 2 mount")
    max_age: MaxDuration = Field(default=None,
                                 description="age of the current version, at most; default: "
                                             "defaults.max_credential_age_days")


    @field_validator("path", "mount")
    @classmethod
    def _strip_slashes(cls, value: str) -> str:
        stripped = value.strip("/")
        if not stripped:
            raise ValueError("must not be empty")
        return stripped

    @property
    def full_path(self) -> str:
        return f"{self.mount}/{self.path}"


DEFAULT_LEASE_MIN_TTL = Threshold(warn=3600.0, critical=600.0)


class VaultTarget(Target):
    """A Vault (or OpenBao) server or cluster address and what healthy looks like there."""

    addr: HttpUrl = Field(pattern=r"^https?://[^/]+/?$", description="e.g. https://vault.example.com:8200")
    token: SecretRef | None = Field(default=None, description="the checker's own token")
    ca_bundle: str | None = Field(default=None, description="PEM file of the CA the server's certificate must "
                                  "chain to (relative to this file); default: the system trust store")
    verify_tls: bool = Field(default=True, description="false: do not verify the server's certificate")
    namespace: str | None = Field(default=None, description="sent as X-Vault-Namespace")
    role: Literal["any", "active", "standby"] = Field(default="any",
                                                      description="the HA role the node must have (standby includes "
                                                                  "performance standby)")
    seal: VaultSeal | None = None
    replication: VaultReplication | None = None
    raft: VaultRaft | None = None
    token_min_ttl: MinDuration = Field(default=None,
                                       description="TTL the checker's token must have left; default: "
                                                   "defaults.credential_min_days")
    token_renewable: bool | None = Field(default=None,
                                         description="whether the checker's token must (true) or must not (false) "
                                                     "be renewable")
    tokens: list[VaultToken] = Field(default_factory=list)
    leases: list[VaultLease] = Field(default_factory=list)
    secrets: list[VaultSecret] = Field(default_factory=list)


    @field_validator("addr")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _consistent(self) -> VaultTarget:
        for key in ("tokens", "leases", "secrets"):
            names = [item.name for item in getattr(self, key)]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{key}: duplicate name {dupes[0]!r}")
        if self.token is None:
            needs = [
                what
                for what, used in (
                    ("raft", self.raft is not None),
                    ("leases", bool(self.leases)),
                    ("secrets", bool(self.secrets)),
                    ("tokens with an accessor", any(t.accessor for t in self.tokens)),
                    ("token_renewable", self.token_renewable is not None),
                )
                if used
            ]
            if needs:
                raise ValueError(f"the checker's own 'token' is required for {', '.join(needs)}")
        return self

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)
        credential = days_threshold_in_seconds(defaults.credential_min_days)
        if self.token_min_ttl is None:
            self.token_min_ttl = credential
        for token in self.tokens:
            if token.min_ttl is None:
                token.min_ttl = credential
        for lease in self.leases:
            if lease.min_ttl is None:
                lease.min_ttl = DEFAULT_LEASE_MIN_TTL
        max_age = Threshold(critical=float(defaults.max_credential_age_days) * DAY_S)
        for secret in self.secrets:
            if secret.max_age is None:
                secret.max_age = max_age


section(
    "vault",
    VaultTarget,
    system="vault",
    doc="Vault / OpenBao: seal, HA role, leader, raft peers, token and lease TTLs, KV rotation age, audit",
)
