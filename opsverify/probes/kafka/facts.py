"""Kafka facts: the cluster metadata (brokers, topics, partitions), a topic's configs, a consumer
group's lag per partition, and one canary round trip, as the checks read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opsverify.errors import UnexpectedResponse
from opsverify.net.sampling import LatencyReading


# -- facts ----------------------------------------------------------------------------------------
@dataclass
class KafkaPartition:
    """One partition as the cluster metadata describes it."""

    id: int
    leader: int
    replicas: list[int]
    isrs: list[int]
    error: str | None = None

    @property
    def distinct_replicas(self) -> int:
        return len(set(self.replicas))


@dataclass
class KafkaTopicInfo:
    """A topic in the metadata: its partitions and their replicas."""

    name: str
    partitions: dict[int, KafkaPartition]
    error: str | None = None

    @property
    def partition_count(self) -> int:
        return len(self.partitions)

    @property
    def replication_factor(self) -> int:
        """The smallest number of distinct brokers holding any partition (0 without partitions)."""
        return min((p.distinct_replicas for p in self.partitions.values()), default=0)

    @property
    def weakest_partition(self) -> KafkaPartition | None:
        """The partition with the fewest distinct replicas."""
        return min(self.partitions.values(), key=lambda p: (p.distinct_replicas, p.id), default=None)


@dataclass
class KafkaMetadata:
    """What one metadata request saw: brokers, controller and every topic."""

    bootstrap: str
    cluster_id: str | None
    controller_id: int
    brokers: dict[int, str]
    topics: dict[str, KafkaTopicInfo]
    latency_ms: float
    refused: dict[int, str] = field(default_factory=dict)  # advertised brokers that took no connection

    def topic(self, name: str) -> KafkaTopicInfo | None:
        """The topic ``name``, or ``None`` when the cluster does not have it."""
        return self.topics.get(name)

    def user_topics(self) -> list[str]:
        """Topic names without internal ones (``__consumer_offsets``...), sorted."""
        return sorted(t for t in self.topics if not t.startswith("__"))


@dataclass
class KafkaTopicConfigs:
    """Topic configs as the brokers report them (``{topic: {key: value}}``) and per-topic errors."""

    values: dict[str, dict[str, str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def value(self, topic: str, key: str) -> str | None:
        """The value of ``key`` for ``topic``, or ``None`` when the broker did not report it.

        Raises :class:`UnexpectedResponse` when the broker refused to describe the topic.
        """
        if topic in self.errors:
            raise UnexpectedResponse(f"configs of topic {topic} unavailable: {self.errors[topic]}")
        return self.values.get(topic, {}).get(key)


@dataclass
class PartitionLag:
    """Lag of one partition: high watermark minus the group's committed offset."""

    topic: str
    partition: int
    committed: int
    high_watermark: int

    @property
    def lag(self) -> int:
        """Messages behind the log end; 0 for a partition whose commit is past the end (see ``past_end``)."""
        return max(0, self.high_watermark - self.committed)

    @property
    def past_end(self) -> bool:
        """The committed offset is beyond the log end: the topic was recreated or truncated under the
        group, so its lag is not zero but unknown (the group will reset by ``auto.offset.reset``)."""
        return self.committed > self.high_watermark

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]"


@dataclass
class KafkaGroupLag:
    """A consumer group's committed offsets against the high watermarks."""

    group: str
    partitions: list[PartitionLag]
    uncommitted_topics: list[str] = field(default_factory=list)  # asked for, but nothing committed
    deleted_topics: list[str] = field(default_factory=list)  # committed, but gone from the cluster
    state: str | None = None
    members: int | None = None

    @property
    def has_commits(self) -> bool:
        return bool(self.partitions)

    @property
    def past_end(self) -> list[PartitionLag]:
        """Partitions whose committed offset is beyond the log end."""
        return [p for p in self.partitions if p.past_end]

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def worst(self) -> PartitionLag | None:
        """The partition with the largest lag (``None`` without commits)."""
        return max(self.partitions, key=lambda p: (p.lag, p.topic, -p.partition), default=None)

    @property
    def topics(self) -> list[str]:
        return sorted({p.topic for p in self.partitions})

    def describe_members(self) -> str:
        """``"state empty, 0 members"`` (or ``""`` when the group could not be described)."""
        if self.state is None:
            return ""
        members = "" if self.members is None else f", {self.members} member{'s' if self.members != 1 else ''}"
        return f"state {self.state}{members}"


@dataclass
class KafkaCanaryResult:
    """One canary produce -> consume round trip (``ok`` False with ``error`` when it did not complete)."""

    topic: str
    ok: bool
    latency_ms: float | None = None
    partition: int | None = None
    offset: int | None = None
    error: str | None = None
    started: float = 0.0
    ended: float = 0.0
    reading: LatencyReading | None = None  # the round trip's latency in samples, when the first one worked
