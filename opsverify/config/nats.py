"""``nats:`` section: one NATS server (or cluster seed list) as seen through one credential.

A target is "this credential against this server": connect, round trip, the subject permissions
the credential must (not) have, the credential's lifetime, JetStream streams and consumers, and
the server's monitoring endpoint. List the same server twice to verify two credentials.

Its keys: ``docs/environment/reference.md#nats``;
an example and its checks: ``docs/environment/nats.md``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from opsverify.config.base import Strict, Target, section, threshold_or
from opsverify.config.secrets import SecretRef
from opsverify.config.tls import ClientCertificate
from opsverify.config.thresholds import MaxCount, MaxDays, MaxMs, MinDays, Threshold
from opsverify.config.values import HttpUrl, check_url

DEFAULT_ROUND_TRIP_MS = Threshold(warn=250, critical=1000)
ACCOUNT_KEY = re.compile(r"^A[A-Z2-7]{55}$")
_JS_NAME = re.compile(r"^[^\s.*>/\\]+$")


def _js_name(value: str) -> str:
    if not _JS_NAME.match(value):
        raise ValueError(f"{value!r}: JetStream names cannot contain '.', '*', '>', '/', '\\' or spaces")
    return value


def _check_subjects(subjects: list[str]) -> list[str]:
    for subject in subjects:
        tokens = subject.split(".")
        if not subject or any(not t or any(c.isspace() for c in t) for t in tokens):
            raise ValueError(f"{subject!r} is not a NATS subject (dot-separated tokens, no spaces)")
        if ">" in tokens[:-1] or any((">" in t or "*" in t) and len(t) > 1 for t in tokens):
            raise ValueError(f"{subject!r}: wildcards are whole tokens, and '>' only comes last")
    return subjects


class NatsStream(Strict):
    """A JetStream stream that must exist: captured subjects, replicas and storage type."""

    name: str
    subjects: list[str] = Field(default_factory=list, description="each must be one of the stream's subjects")
    min_replicas: int = Field(default=1, ge=1, le=5)
    storage: Literal["file", "memory"] | None = None

    @field_validator("subjects")
    @classmethod
    def _valid_subjects(cls, value: list[str]) -> list[str]:
        return _check_subjects(value)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _js_name(value)


class NatsConsumer(Strict):
    """A JetStream consumer that must exist, with its backlog (pending, ack pending) bounded."""

    stream: str
    consumer: str
    max_pending: MaxCount | None = Field(default=None, description="messages not yet delivered")
    max_ack_pending: MaxCount | None = Field(default=None, description="delivered, not yet acknowledged")
    max_ack_age_s: float | None = Field(
        default=None, gt=0, le=7 * 86400, allow_inf_nan=False,
        description="over a window: fail when the ack floor stays unchanged this long while messages wait",
    )

    @field_validator("stream", "consumer")
    @classmethod
    def _valid_names(cls, value: str) -> str:
        return _js_name(value)

    @property
    def name(self) -> str:
        """``STREAM/consumer``: the item id in reports (consumer names repeat across streams)."""
        return f"{self.stream}/{self.consumer}"


DISCOVERY_SUBJECTS = ("$SRV.PING", "$SRV.INFO", "$SRV.STATS", "$JS.API.INFO")
"""Request subjects that only read: the NATS services protocol's discovery and JetStream's account info."""


class NatsRequest(Strict):
    """A service subject that answers requests (e.g. ``$SRV.PING.<service>`` or ``$JS.API.INFO``)."""

    subject: str
    payload: str = ""
    reply_contains: str | None = None

    @property
    def reads_only(self) -> bool:
        """Whether the request is a discovery read (``$SRV.PING``/``INFO``/``STATS``, ``$JS.API.INFO``);
        a request to any other subject reaches a service handler and is ``mutating``."""
        return any(self.subject == s or self.subject.startswith(s + ".") for s in DISCOVERY_SUBJECTS)

    @field_validator("subject")
    @classmethod
    def _valid_subject(cls, value: str) -> str:
        return _check_subjects([value])[0]


class NatsCredentials(Strict):
    """How to authenticate: at most one of creds, nkey seed, user + password, token (none: anonymous).

    Kept separate from the target so a later check can connect with another credential of the same
    server (e.g. the old and the new one during a rotation).
    """

    creds: SecretRef | None = Field(
        default=None, description="a .creds file (user JWT + nkey seed): its content, or a path to it"
    )
    nkey_seed: SecretRef | None = None
    user: str | None = None
    password: SecretRef | None = None
    token: SecretRef | None = None

    @model_validator(mode="after")
    def _one_mode(self) -> NatsCredentials:
        if (self.user is None) != (self.password is None):
            raise ValueError("'user' and 'password' go together")
        modes = [m for m in ("creds", "nkey_seed", "user", "token") if getattr(self, m) is not None]
        if len(modes) > 1:
            raise ValueError(f"choose one way to authenticate, not {' and '.join(modes)}")
        return self

    @property
    def mode(self) -> str:
        """``creds`` | ``nkey`` | ``password`` | ``token`` | ``none``."""
        if self.creds is not None:
            return "creds"
        if self.nkey_seed is not None:
            return "nkey"
        if self.user is not None:
            return "password"
        if self.token is not None:
            return "token"
        return "none"


class NatsTarget(Target, ClientCertificate):
    """A NATS server as one credential sees it."""

    url: str | list[str] = Field(description="nats://, tls://, ws:// or wss:// URL(s) of the server or cluster")
    ca_bundle: str | None = Field(default=None, description="PEM CA bundle the server certificate must chain to")
    # credentials (see NatsCredentials; flat here so the file reads naturally)
    creds: SecretRef | None = None
    nkey_seed: SecretRef | None = None
    user: str | None = None
    password: SecretRef | None = None
    token: SecretRef | None = None
    previous: NatsCredentials | None = Field(
        default=None,
        description="during a rotation: the credential being replaced (creds / nkey_seed / user+password / "
        "token); the rotation checks expect it accepted before and during the overlap, rejected after",
    )
    # the credential itself
    account: str | None = Field(default=None, description="expected account: name or public key (A...)")
    credential_min_days: MinDays | None = Field(default=None,
                                                description="days to the JWT's expiry, at least; default: "
                                                            "defaults.credential_min_days")
    max_credential_age_days: MaxDays | None = Field(default=None,
                                                    description="days since the JWT was issued, at most; default: "
                                                                "defaults.max_credential_age_days")
    # subject permissions the server must enforce for this credential
    allow_publish: list[str] = Field(default_factory=list,
                                     description="subjects it must be allowed to publish to (a wildcard: a concrete "
                                                 "subject)")
    deny_publish: list[str] = Field(default_factory=list,
                                    description="subjects the server must refuse this credential to publish to")
    allow_subscribe: list[str] = Field(default_factory=list,
                                       description="subjects it must be allowed to subscribe to (wildcards allowed)")
    deny_subscribe: list[str] = Field(default_factory=list,
                                      description="subjects the credential must be refused to subscribe to")
    # round trips
    request: NatsRequest | None = None
    canary_subject: str | None = Field(default=None,
                                       description="mutating: one message is published here and must come back")
    max_round_trip_ms: MaxMs | None = Field(default=None,
                                            description="budget of the request and canary round trips; default "
                                                        "{warn: 250, critical: 1000}")
    # JetStream
    jetstream: bool | None = Field(
        default=None, description="expected JetStream state (default: true when streams or consumers are listed)"
    )
    streams: list[NatsStream] = Field(default_factory=list)
    consumers: list[NatsConsumer] = Field(default_factory=list)
    # the server's HTTP monitoring port
    monitoring_url: HttpUrl | None = Field(default=None, pattern=r"^https?://")

    @field_validator("url")
    @classmethod
    def _urls(cls, value: str | list[str]) -> str | list[str]:
        urls = value if isinstance(value, list) else [u.strip() for u in value.split(",")]
        if not urls or any(not re.match(r"^(nats|tls|ws|wss)://[^\s/]+", u) for u in urls):
            raise ValueError("NATS URLs look like nats://host:4222 (or tls://, ws://, wss://)")
        for url in urls:
            check_url(url, ("nats", "tls", "ws", "wss"))
        return value

    @field_validator("allow_publish", "deny_publish", "allow_subscribe", "deny_subscribe")
    @classmethod
    def _subjects(cls, value: list[str]) -> list[str]:
        return _check_subjects(value)

    @field_validator("canary_subject")
    @classmethod
    def _canary(cls, value: str | None) -> str | None:
        if value is not None:
            _check_subjects([value])
            if "*" in value.split(".") or ">" in value.split("."):
                raise ValueError("the canary subject is published to: no wildcards")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NatsTarget:
        self.credentials()  # validates the combination
        if self.account is not None and self.account.startswith("A") and len(self.account) == 56:
            if not ACCOUNT_KEY.match(self.account):
                raise ValueError(f"account {self.account!r} looks like a public key but is not one")
        for direction in ("publish", "subscribe"):
            both = set(getattr(self, f"allow_{direction}")) & set(getattr(self, f"deny_{direction}"))
            if both:
                raise ValueError(f"{', '.join(sorted(both))}: both allowed and denied for {direction}")
        seen: set[str] = set()
        for consumer in self.consumers:
            if consumer.name in seen:
                raise ValueError(f"consumer {consumer.name} is listed twice")
            seen.add(consumer.name)
        return self

    @property
    def servers(self) -> list[str]:
        """The server URLs, in the order given."""
        return self.url if isinstance(self.url, list) else [u.strip() for u in self.url.split(",")]

    @property
    def uses_tls(self) -> bool:
        return (self.ca_bundle is not None or self.client_cert is not None
                or any(u.startswith(("tls://", "wss://")) for u in self.servers))

    @property
    def account_is_key(self) -> bool:
        return bool(self.account and ACCOUNT_KEY.match(self.account))

    def credentials(self) -> NatsCredentials:
        """This target's credential as a reusable :class:`NatsCredentials`."""
        return NatsCredentials(
            creds=self.creds, nkey_seed=self.nkey_seed, user=self.user, password=self.password, token=self.token
        )

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)
        self.max_round_trip_ms = threshold_or(self.max_round_trip_ms, DEFAULT_ROUND_TRIP_MS)
        self.credential_min_days = threshold_or(self.credential_min_days, defaults.credential_min_days)
        self.max_credential_age_days = threshold_or(
            self.max_credential_age_days, Threshold(critical=float(defaults.max_credential_age_days))
        )
        if self.jetstream is None and (self.streams or self.consumers):
            self.jetstream = True


section(
    "nats",
    NatsTarget,
    system="nats",
    doc="NATS: auth per credential, round trip, subject permissions, creds lifetime, JetStream, /healthz",
)
