"""Kafka probes: cluster metadata, topic configs, consumer-group lag and a canary round trip.

confluent-kafka (librdkafka) is synchronous: every call runs in the engine's worker threads
(``ctx.run_sync``) with its own timeout taken from what is left of the probe's budget
(``ctx.timeout``), so a probe always ends with its own message before the engine gives up on it.

One ``AdminClient`` per target is shared by the target's probes (``ctx.resource``); its
``error_cb`` collects what librdkafka only reports there (connection refused, TLS and SASL
failures). The metadata probe is the target's reachability gate: every other probe first awaits it
(``ctx.depend``), so an unreachable cluster makes all its checks error once with the same cause.

What the probes rely on (proved against tansu in ``tests/servers/test_kafka_launcher.py``):

* ``list_topics()`` is only ever called WITHOUT a topic name: metadata for a named topic creates it
  on brokers with auto-creation on. Topic existence is a lookup in the full listing.
* Replication factor is counted as the number of *distinct* broker ids in a partition's replica
  list (a broker that does not validate replication lists one broker several times).
* ``describe_configs`` may answer only explicitly set keys: an absent key is "not reported", not
  an error.
* A group's committed offsets come from ``list_consumer_group_offsets`` without partitions: only
  committed partitions are returned. A group with none is reported as such, never as zero lag.
* While no broker answers, librdkafka retries silently until the call's timeout; metadata is
  therefore asked in short slices, and the ``error_cb`` is drained between slices so a refused
  connection or a rejected login ends the probe at once with that cause.

Example::

    meta = await metadata(ctx)                  # ctx.target is a KafkaTarget
    meta.brokers, meta.topic("orders").replication_factor
    lag = await group_lag(ctx)                  # ctx.key.item names one of ctx.target.groups
    lag.total_lag, lag.worst, lag.has_commits
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsverify.config.base import Safety
from opsverify.config.kafka import KafkaGroup, KafkaTarget
from opsverify.engine import ProbeContext
from opsverify.errors import ClientCertUnusable, ProbeTimeout, UnexpectedResponse, Unreachable
from opsverify.lazy import lazy_module
from opsverify.net.sampling import LatencyReading, Timed, sample_latency
from opsverify.net.tls import resolve
from opsverify.probes.kafka_listeners import refused_brokers
from opsverify.safety import permit

if TYPE_CHECKING:
    import confluent_kafka as ck
    # confluent_kafka.admin has no __all__: mypy --strict needs an ignore where its names are used
    import confluent_kafka.admin as ck_admin
    from confluent_kafka import KafkaError, KafkaException, Message
else:
    ck = lazy_module("confluent_kafka")
    ck_admin = lazy_module("confluent_kafka.admin")

#: Metadata is asked in slices this long, so a refused connection is reported within about this.
METADATA_SLICE_S = 0.5
#: Kept back from the probe's timeout so the probe's own message wins over the engine's backstop.
MARGIN_S = 0.05


@cache
def _fatal_codes() -> frozenset[int]:
    """librdkafka error codes that mean "this client will not get in", reported at once."""
    return frozenset({ck.KafkaError._AUTHENTICATION, ck.KafkaError._SSL, ck.KafkaError._ALL_BROKERS_DOWN})


@cache
def _connection_codes() -> frozenset[int]:
    """librdkafka error codes of a connection that could not be made."""
    return frozenset({ck.KafkaError._TRANSPORT, ck.KafkaError._RESOLVE, ck.KafkaError._SSL,
                      ck.KafkaError._AUTHENTICATION})


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


# -- clients --------------------------------------------------------------------------------------
class KafkaAdmin:
    """A shared ``AdminClient`` plus every error its ``error_cb`` reported (thread-safe)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._errors: list[KafkaError] = []
        self._lock = threading.Lock()
        try:
            self.client = ck_admin.AdminClient({**config, "error_cb": self._on_error})  # type: ignore[dict-item]
        except ck.KafkaException as exc:
            raise Unreachable(f"cannot set up a Kafka client: {_kafka_text(exc)}") from None

    def _on_error(self, error: KafkaError) -> None:
        with self._lock:
            self._errors.append(error)
            del self._errors[:-50]

    def mark(self) -> int:
        with self._lock:
            return len(self._errors)

    def errors_since(self, mark: int) -> list[KafkaError]:
        """Drain the client's callbacks, then the errors reported since ``mark``."""
        self.client.poll(0)
        with self._lock:
            return list(self._errors[min(mark, len(self._errors)):])


def _base_dir(ctx: ProbeContext[Any]) -> Path | None:
    source = getattr(ctx.env, "source", "")
    return Path(source).resolve().parent if source else None


def client_config(ctx: ProbeContext[Any]) -> dict[str, Any]:
    """The librdkafka config of the target: bootstrap, security, credentials (revealed here)."""
    target: KafkaTarget = ctx.target
    config: dict[str, Any] = {
        "bootstrap.servers": target.bootstrap,
        "client.id": "opsverify",
        "security.protocol": target.protocol,
        "log_level": 0,  # librdkafka would log every failed connect to stderr
    }
    if target.sasl is not None:
        config["sasl.mechanism"] = target.sasl.mechanism
        config["sasl.username"] = target.sasl.username.reveal().strip()
        config["sasl.password"] = target.sasl.password.reveal().strip()
    if target.ca_bundle:
        path = Path(os.path.expandvars(os.path.expanduser(target.ca_bundle)))
        base = _base_dir(ctx)
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            raise Unreachable(f"CA bundle {path} cannot be read")
        config["ssl.ca.location"] = str(path)
    if target.client_cert and target.client_key is not None:
        base = _base_dir(ctx)
        cert = resolve(target.client_cert, str(base) if base is not None else None)
        if not cert.is_file():
            raise ClientCertUnusable(f"client certificate {cert} does not exist: point client_cert at the PEM file")
        config["ssl.certificate.location"] = str(cert)
        config["ssl.key.pem"] = target.client_key.reveal()  # librdkafka takes the key as PEM text
    return config


def _admin(ctx: ProbeContext[Any]) -> KafkaAdmin:
    target: KafkaTarget = ctx.target
    config = client_config(ctx)  # reveals secrets first: a missing one errors before any I/O
    name = f"kafka-admin:{ctx.key.env}:{target.name}"
    admin: KafkaAdmin = ctx.resource(name, lambda: KafkaAdmin(config))
    return admin


class Budget:
    """The probe's deadline (``ctx.remaining()``) as the client calls in worker threads use it."""

    def __init__(self, ctx: ProbeContext[Any]) -> None:
        self.ctx = ctx
        self.timeout = ctx.timeout
        self.where = _where(ctx.target)

    @property
    def deadline(self) -> float:
        """When the calls must be done (``time.monotonic()`` clock), a margin before the probe's deadline."""
        return self.ctx.deadline - MARGIN_S

    def left(self, doing: str) -> float:
        """Seconds left (at least a few ms); raises :class:`ProbeTimeout` naming ``doing`` when none."""
        remaining = self.ctx.remaining(MARGIN_S)
        if remaining <= 0.005:
            raise self.expired(doing)
        return remaining

    def expired(self, doing: str) -> ProbeTimeout:
        """The error for ``doing`` not finishing within the probe's timeout."""
        return ProbeTimeout(f"Kafka at {self.where}: {doing} took longer than {self.timeout:g} s")


def _where(target: KafkaTarget) -> str:
    servers = target.servers
    return servers[0] + (f" (+{len(servers) - 1} more)" if len(servers) > 1 else "")


# -- error text -----------------------------------------------------------------------------------
_AFTER = re.compile(r"\s*\(after \d+ms in state [A-Z_]+\)(?:\s*\(_[A-Z_]+\))?")
#: librdkafka names a broker learned from metadata ``host:port/<id>`` (a bootstrap one ``.../bootstrap``).
_LEARNED_BROKER = re.compile(r"^\S+/\d+: ")
_BROKER_PREFIX = re.compile(r"^[a-z_]+://|^\S+/(?:bootstrap|\d+):\s*")


def _clean(text: str) -> str:
    text = _AFTER.sub("", text)
    text = _BROKER_PREFIX.sub("", text)
    text = _BROKER_PREFIX.sub("", text)
    return " ".join(text.split())[:240]


def _kafka_error(exc: BaseException) -> KafkaError | None:
    if isinstance(exc, ck.KafkaException) and exc.args and isinstance(exc.args[0], ck.KafkaError):
        return exc.args[0]
    return None


def _kafka_text(exc: BaseException) -> str:
    error = _kafka_error(exc)
    if error is not None:
        return f"{_clean(error.str())} ({error.name()})"
    return " ".join(str(exc).split())[:240] or type(exc).__name__


def _fatal_cause(errors: list[KafkaError]) -> str | None:
    """The reason no broker will answer, when the ``error_cb`` reports one."""
    if not any(e.code() in _fatal_codes() for e in errors):
        return None
    for code, label in (
        (ck.KafkaError._AUTHENTICATION, "authentication failed"),
        (ck.KafkaError._SSL, "TLS handshake failed"),
        (ck.KafkaError._RESOLVE, "DNS lookup failed"),
    ):
        found = [e for e in errors if e.code() == code]
        if found:
            return f"{label}: {_clean(found[-1].str())}"
    transport = [e for e in errors if e.code() in _connection_codes()]
    if transport and all(_LEARNED_BROKER.match(e.str()) for e in transport):
        # Only brokers the metadata advertised refused: the bootstrap answered (that is how they
        # were learned). librdkafka re-bootstraps; the metadata probe reports the refusals itself.
        return None
    if transport:
        text = _clean(transport[-1].str())
        if "connection refused" in text.lower():
            return "connection refused"
        return text
    return "all brokers are down"


# -- probes ---------------------------------------------------------------------------------------
async def metadata(ctx: ProbeContext[Any]) -> KafkaMetadata:
    """Brokers, controller and all topics of the target's cluster (one request, shared)."""
    admin = _admin(ctx)
    budget = Budget(ctx)
    ctx.phase = f"asking {budget.where} for cluster metadata"
    found: KafkaMetadata = await ctx.run_sync(_metadata_sync, admin, budget)
    return found


def _metadata_sync(admin: KafkaAdmin, budget: Budget) -> KafkaMetadata:
    mark = admin.mark()
    started = time.monotonic()
    last: BaseException | None = None
    while True:
        try:
            remaining = budget.left("the metadata request")
        except ProbeTimeout:
            cause = _kafka_text(last) if last is not None else "no answer"
            raise ProbeTimeout(
                f"Kafka at {budget.where}: no cluster metadata within {budget.timeout:g} s ({cause})"
            ) from None
        try:
            # never pass a topic name: metadata for a named topic may create it
            meta = admin.client.list_topics(timeout=min(METADATA_SLICE_S, remaining))
            break
        except ck.KafkaException as exc:
            last = exc
            fatal = _fatal_cause(admin.errors_since(mark))
            if fatal is not None:
                raise Unreachable(f"cannot reach Kafka at {budget.where}: {fatal}") from None
            error = _kafka_error(exc)
            if error is not None and error.code() not in (ck.KafkaError._TRANSPORT, ck.KafkaError._TIMED_OUT):
                raise UnexpectedResponse(
                    f"Kafka at {budget.where}: metadata request failed: {_kafka_text(exc)}"
                ) from None
    latency_ms = (time.monotonic() - started) * 1000
    topics: dict[str, KafkaTopicInfo] = {}
    for name, topic in meta.topics.items():
        partitions = {
            pid: KafkaPartition(
                id=pid,
                leader=int(p.leader),
                replicas=[int(r) for r in p.replicas],
                isrs=[int(r) for r in p.isrs],
                error=_clean(p.error.str()) if p.error is not None else None,
            )
            for pid, p in topic.partitions.items()
        }
        problem = _clean(topic.error.str()) if topic.error is not None else None
        topics[name] = KafkaTopicInfo(name=name, partitions=partitions, error=problem)
    cluster_id: Any = meta.cluster_id
    brokers = {int(b.id): f"{b.host}:{b.port}" for b in meta.brokers.values()}
    return KafkaMetadata(
        bootstrap=budget.where,
        cluster_id=str(cluster_id) if cluster_id is not None else None,
        controller_id=int(meta.controller_id),
        brokers=brokers,
        topics=topics,
        latency_ms=latency_ms,
        refused=refused_brokers(brokers, budget.deadline),
    )


async def topic_configs(ctx: ProbeContext[Any]) -> KafkaTopicConfigs:
    """The configs of every listed topic that has a ``min_insync_replicas`` expectation (one request)."""
    budget = Budget(ctx)  # the engine counts the timeout from the probe's start, so do we
    meta: KafkaMetadata = await ctx.depend("kafka_metadata")
    target: KafkaTarget = ctx.target
    names = [t.name for t in target.topics if t.min_insync_replicas is not None and meta.topic(t.name)]
    if not names:
        return KafkaTopicConfigs()
    admin = _admin(ctx)
    ctx.phase = f"describing the configs of {len(names)} topic(s) at {budget.where}"
    found: KafkaTopicConfigs = await ctx.run_sync(_topic_configs_sync, admin, budget, names)
    return found


def _topic_configs_sync(admin: KafkaAdmin, budget: Budget, names: list[str]) -> KafkaTopicConfigs:
    resources = [
        ck_admin.ConfigResource(ck_admin.ResourceType.TOPIC, name)  # type: ignore[attr-defined]
        for name in names
    ]
    futures = admin.client.describe_configs(resources, request_timeout=budget.left("describe_configs"))
    found = KafkaTopicConfigs()
    for resource, future in futures.items():
        name = str(resource.name)
        try:
            entries = future.result(timeout=budget.left("describe_configs") + MARGIN_S)
        except ck.KafkaException as exc:
            _raise_if_timeout(exc, budget, "describe_configs")
            found.errors[name] = _kafka_text(exc)
            continue
        except TimeoutError:
            raise budget.expired("describe_configs") from None
        found.values[name] = {k: str(e.value) for k, e in entries.items() if e.value is not None}
    return found


def _raise_if_timeout(exc: KafkaException, budget: Budget, doing: str) -> None:
    error = _kafka_error(exc)
    if error is not None and error.code() in (ck.KafkaError._TIMED_OUT, ck.KafkaError._TRANSPORT):
        raise ProbeTimeout(
            f"Kafka at {budget.where}: {doing} got no answer within {budget.timeout:g} s ({error.name()})"
        ) from None


def _group(target: KafkaTarget, name: str | None) -> KafkaGroup:
    for group in target.groups:
        if group.name == name:
            return group
    raise UnexpectedResponse(f"no consumer group {name!r} in target {target.name}")


async def group_lag(ctx: ProbeContext[Any]) -> KafkaGroupLag:
    """Committed offsets of one consumer group (``ctx.key.item``) against the high watermarks."""
    budget = Budget(ctx)  # the engine counts the timeout from the probe's start, so do we
    meta: KafkaMetadata = await ctx.depend("kafka_metadata")
    group = _group(ctx.target, ctx.key.item)
    admin = _admin(ctx)
    ctx.phase = f"reading committed offsets of group {group.name} at {budget.where}"
    committed, state, members = await ctx.run_sync(_committed_sync, admin, budget, group.name)
    wanted = set(group.topics) if group.topics is not None else None
    if wanted is not None:
        committed = {tp: off for tp, off in committed.items() if tp[0] in wanted}
    uncommitted = sorted((wanted or set()) - {topic for topic, _ in committed})
    deleted = sorted({topic for topic, _ in committed if meta.topic(topic) is None})
    live = {tp: off for tp, off in committed.items() if tp[0] not in deleted}
    ctx.phase = f"reading high watermarks for group {group.name} at {budget.where}"
    highs = await ctx.run_sync(_high_watermarks_sync, admin, budget, sorted(live))
    partitions = [
        PartitionLag(topic, partition, offset, highs[(topic, partition)])
        for (topic, partition), offset in sorted(live.items())
    ]
    return KafkaGroupLag(
        group=group.name,
        partitions=partitions,
        uncommitted_topics=uncommitted,
        deleted_topics=deleted,
        state=state,
        members=members,
    )


def _committed_sync(
    admin: KafkaAdmin, budget: Budget, group: str
) -> tuple[dict[tuple[str, int], int], str | None, int | None]:
    timeout = budget.left("list_consumer_group_offsets")
    offsets_future = admin.client.list_consumer_group_offsets(
        [ck.ConsumerGroupTopicPartitions(group)], request_timeout=timeout
    )[group]
    describe_future = admin.client.describe_consumer_groups([group], request_timeout=timeout)[group]
    committed: dict[tuple[str, int], int] = {}
    try:
        answer = offsets_future.result(timeout=budget.left("list_consumer_group_offsets") + MARGIN_S)
    except ck.KafkaException as exc:
        error = _kafka_error(exc)
        if error is None or error.code() != ck.KafkaError.GROUP_ID_NOT_FOUND:
            _raise_if_timeout(exc, budget, f"reading the offsets of group {group}")
            raise UnexpectedResponse(
                f"Kafka at {budget.where}: offsets of group {group} unavailable: {_kafka_text(exc)}"
            ) from None
        answer = None
    except TimeoutError:
        raise budget.expired(f"reading the offsets of group {group}") from None
    for tp in (answer.topic_partitions or []) if answer is not None else []:
        if tp.error is None and tp.offset >= 0:
            committed[(tp.topic, tp.partition)] = int(tp.offset)
    state: str | None = None
    members: int | None = None
    try:
        description = describe_future.result(timeout=max(budget.deadline - time.monotonic(), 0.001))
        state = str(getattr(description.state, "name", description.state)).lower()
        members = len(description.members or [])
    except (ck.KafkaException, TimeoutError):
        pass  # the state is context for the message only
    return committed, state, members


def _high_watermarks_sync(
    admin: KafkaAdmin, budget: Budget, partitions: list[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    if not partitions:
        return {}
    latest = ck_admin.OffsetSpec.latest()  # type: ignore[attr-defined, no-untyped-call]
    request = {ck.TopicPartition(topic, partition): latest for topic, partition in partitions}
    futures = admin.client.list_offsets(request, request_timeout=budget.left("list_offsets"))
    highs: dict[tuple[str, int], int] = {}
    for tp, future in futures.items():
        try:
            info = future.result(timeout=budget.left("list_offsets") + MARGIN_S)
        except ck.KafkaException as exc:
            _raise_if_timeout(exc, budget, "reading high watermarks")
            raise UnexpectedResponse(
                f"Kafka at {budget.where}: high watermark of {tp.topic}[{tp.partition}] unavailable: "
                f"{_kafka_text(exc)}"
            ) from None
        except TimeoutError:
            raise budget.expired("reading high watermarks") from None
        highs[(tp.topic, tp.partition)] = int(info.offset)
    return highs


async def canary(ctx: ProbeContext[Any]) -> KafkaCanaryResult:
    """Produce one uniquely keyed record to the canary topic and read it back by partition+offset.

    No consumer group is joined or committed. A missing canary topic is reported, never created.
    """
    budget = Budget(ctx)  # the engine counts the timeout from the probe's start, so do we
    meta: KafkaMetadata = await ctx.depend("kafka_metadata")
    target: KafkaTarget = ctx.target
    if target.canary is None:
        raise UnexpectedResponse(f"target {target.name} has no canary configured")
    topic = target.canary.topic
    permit(ctx, Safety.mutating, f"a canary record to {topic}")
    if meta.topic(topic) is None:
        return KafkaCanaryResult(topic=topic, ok=False, error=f"canary topic {topic} does not exist")
    config = client_config(ctx)
    ctx.phase = f"canary round trip through {topic} at {budget.where}"
    first: KafkaCanaryResult = await ctx.run_sync(_canary_sync, config, budget, topic)
    if first.ok:

        async def one() -> Timed:
            again: KafkaCanaryResult = await ctx.run_sync(_canary_sync, config, Budget(ctx), topic)
            if not again.ok:
                raise ProbeTimeout(f"Kafka at {budget.where}: canary round trip failed: {again.error}")
            return Timed(again.started, again.ended)

        first.reading = await sample_latency(ctx, one, host=budget.where, what=f"canary round trip through {topic}",
                                             seed=Timed(first.started, first.ended))
    return first


def _canary_sync(config: dict[str, Any], budget: Budget, topic: str) -> KafkaCanaryResult:
    key = f"opsverify-canary-{uuid.uuid4().hex}".encode()
    delivered: list[tuple[int, int]] = []
    failures: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failures.append(f"{_clean(err.str())} ({err.name()})")
        else:
            delivered.append((int(msg.partition() or 0), int(msg.offset() or 0)))

    timeout_ms = max(int(budget.left("the canary produce") * 1000), 1)
    producer = ck.Producer({**config, "linger.ms": 0, "message.timeout.ms": timeout_ms})
    started = time.monotonic()  # the round trip: produce to read back (the client's construction is ours)
    try:
        producer.produce(topic, key=key, value=b'{"opsverify": "canary"}', on_delivery=on_delivery)
        producer.flush(budget.left("the canary produce"))
    except (ck.KafkaException, BufferError) as exc:
        return KafkaCanaryResult(topic=topic, ok=False, error=f"produce failed: {_kafka_text(exc)}")
    except ProbeTimeout:
        pass
    finally:
        producer.purge()
        producer.flush(0)
    if not delivered:
        why = failures[-1] if failures else f"not acknowledged within {budget.timeout:g} s"
        return KafkaCanaryResult(topic=topic, ok=False, error=f"produce to {topic} failed: {why}")
    (partition, offset), = delivered
    consumer = ck.Consumer({
        **config,
        "group.id": key.decode(),  # mandatory, but nothing joins or commits it
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "fetch.wait.max.ms": 50,
    })
    try:
        consumer.assign([ck.TopicPartition(topic, partition, offset)])
        while time.monotonic() < budget.deadline:
            msg = consumer.poll(min(0.05, max(budget.deadline - time.monotonic(), 0.001)))
            if msg is None or msg.error() is not None:
                continue
            if msg.key() == key:
                ended = time.monotonic()
                return KafkaCanaryResult(topic, True, (ended - started) * 1000, partition, offset,
                                         started=started, ended=ended)
    except ck.KafkaException as exc:
        return KafkaCanaryResult(topic, False, None, partition, offset, f"consume failed: {_kafka_text(exc)}")
    finally:
        consumer.close()
    return KafkaCanaryResult(
        topic, False, None, partition, offset,
        f"record produced to {topic}[{partition}] at offset {offset} was not read back within "
        f"{budget.timeout:g} s",
    )
