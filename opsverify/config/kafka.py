"""``kafka:`` section: one Kafka cluster per target — brokers, required topics, consumer-group lag, canary.

Its keys: ``docs/environment/reference.md#kafka``;
an example and its checks: ``docs/environment/kafka.md``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from opsverify.config.base import Strict, Target, section, threshold_or
from opsverify.config.secrets import SecretRef
from opsverify.config.tls import ClientCertificate
from opsverify.config.thresholds import MaxCount, MaxMs, Threshold
from opsverify.config.values import check_host, shown

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

#: Consumer-group lag (messages, summed over the group's partitions) when neither the group nor
#: the target sets ``max_lag``.
DEFAULT_MAX_LAG = Threshold(warn=1000, critical=10000)
#: Canary produce -> consume round trip when the canary sets no ``max_latency_ms``.
DEFAULT_CANARY_LATENCY_MS = Threshold(warn=1000, critical=3000)

#: The longest ``max_commit_age_s`` accepted (a week): longer is no trend an analysis window can show.
MAX_COMMIT_AGE_S = 7 * 86400.0

#: Kafka topic names: letters, digits, ``.``, ``_`` and ``-``, at most 249 characters.
TOPIC_PATTERN = r"^[A-Za-z0-9._-]{1,249}$"


class KafkaSasl(Strict):
    """SASL credentials; both values are secret references, revealed only inside the probes."""

    mechanism: SaslMechanism = "PLAIN"
    username: SecretRef
    password: SecretRef


class KafkaTopic(Strict):
    """A topic that must exist, with at least these partitions / replicas / min.insync.replicas."""

    name: str = Field(pattern=TOPIC_PATTERN)
    partitions: int | None = Field(default=None, ge=1, description="minimum partition count")
    replication_factor: int | None = Field(
        default=None, ge=1, description="minimum distinct replicas of every partition"
    )
    min_insync_replicas: int | None = Field(
        default=None, ge=1, description="minimum min.insync.replicas of the topic"
    )


class KafkaGroup(Strict):
    """A consumer group whose lag (high watermark - committed offset) must stay within thresholds."""

    name: str = Field(min_length=1, max_length=255)
    topics: list[str] | None = Field(
        default=None, description="count lag only on these topics (default: every committed topic)"
    )
    max_lag: MaxCount | None = Field(default=None, description="summed over all partitions")
    max_partition_lag: MaxCount | None = Field(
        default=None, description="on the single worst partition (check skipped when unset)"
    )
    max_commit_age_s: float | None = Field(
        default=None, gt=0, le=MAX_COMMIT_AGE_S, allow_inf_nan=False,
        description="over a window: fail when a lagging partition's committed offset stays unchanged longer",
    )


class KafkaCanary(Strict):
    """Produce one record to ``topic`` and read it back (by partition + offset, no group join)."""

    topic: str = Field(pattern=TOPIC_PATTERN)
    max_latency_ms: MaxMs | None = None


class KafkaTarget(Target, ClientCertificate):
    """One Kafka cluster: how to reach it and what a healthy cluster looks like."""

    bootstrap: str = Field(description="host:port[,host:port...] (a YAML list is accepted too)")
    security_protocol: SecurityProtocol | None = None
    sasl: KafkaSasl | None = None
    ca_bundle: str | None = Field(default=None, description="PEM file of the CA the server's certificate must "
                                  "chain to (relative to this file); default: the system trust store")
    min_brokers: int | None = Field(default=None, ge=1)
    replication_factor: int | None = Field(
        default=None, ge=1, description="default minimum replication factor of every topic"
    )
    min_insync_replicas: int | None = Field(
        default=None, ge=1, description="default minimum min.insync.replicas of every topic"
    )
    topics: list[KafkaTopic] = Field(default_factory=list)
    max_lag: MaxCount | None = Field(default=None, description="default max_lag of every group")
    groups: list[KafkaGroup] = Field(default_factory=list)
    max_commit_age_s: float | None = Field(
        default=None, gt=0, le=MAX_COMMIT_AGE_S, allow_inf_nan=False,
        description="default max_commit_age_s of every group",
    )
    canary: KafkaCanary | None = None

    @field_validator("bootstrap", mode="before")
    @classmethod
    def _join_list(cls, value: Any) -> Any:
        if isinstance(value, list):
            return ",".join(str(v).strip() for v in value)
        return value

    @field_validator("bootstrap")
    @classmethod
    def _valid_bootstrap(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError("at least one host:port is needed")
        for server in servers:
            host, _, port = server.rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"{shown(server)} is not host:port")
            check_host(host)
        return ",".join(servers)

    @field_validator("topics", "groups")
    @classmethod
    def _unique_names(cls, value: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for entry in value:
            if entry.name in seen:
                raise ValueError(f"{entry.name!r} is listed twice")
            seen.add(entry.name)
        return value

    @model_validator(mode="after")
    def _security_consistent(self) -> KafkaTarget:
        protocol = self.protocol
        if protocol.startswith("SASL_") and self.sasl is None:
            raise ValueError(f"security_protocol {protocol} needs a 'sasl' block (username, password)")
        if self.sasl is not None and not protocol.startswith("SASL_"):
            raise ValueError(f"'sasl' is set but security_protocol is {protocol}")
        if self.ca_bundle and not protocol.endswith("SSL"):
            raise ValueError(f"'ca_bundle' is set but security_protocol is {protocol} (no TLS)")
        if self.client_cert and not protocol.endswith("SSL"):
            raise ValueError(f"'client_cert' is set but security_protocol is {protocol} (no TLS)")
        return self

    @property
    def protocol(self) -> SecurityProtocol:
        """The security protocol in force (explicit, or derived from ``sasl`` / ``ca_bundle``)."""
        if self.security_protocol is not None:
            return self.security_protocol
        if self.sasl is not None:
            return "SASL_SSL"
        return "SSL" if self.ca_bundle or self.client_cert else "PLAINTEXT"

    @property
    def servers(self) -> list[str]:
        return self.bootstrap.split(",")

    def fill_defaults(self, defaults: Any) -> None:
        super().fill_defaults(defaults)
        for topic in self.topics:
            if topic.replication_factor is None:
                topic.replication_factor = self.replication_factor
            if topic.min_insync_replicas is None:
                topic.min_insync_replicas = self.min_insync_replicas
        for group in self.groups:
            group.max_lag = threshold_or(group.max_lag, threshold_or(self.max_lag, DEFAULT_MAX_LAG))
            if group.max_commit_age_s is None:
                group.max_commit_age_s = self.max_commit_age_s
        if self.canary is not None:
            self.canary.max_latency_ms = threshold_or(
                self.canary.max_latency_ms, DEFAULT_CANARY_LATENCY_MS
            )


section(
    "kafka",
    KafkaTarget,
    system="kafka",
    doc="Kafka clusters: brokers, required topics (partitions, replicas, min.insync), "
    "consumer-group lag, canary round trip",
)
