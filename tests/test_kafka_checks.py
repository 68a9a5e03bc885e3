"""Kafka checks against a real Kafka-protocol broker: healthy, and each fault they exist to catch.

By default the broker is tansu (a Kafka-compatible broker, started per module on a free port by
:mod:`opsverify_sandbox.servers.kafka`). tansu is not Apache Kafka: with
``OPSVERIFY_TEST_KAFKA_BOOTSTRAP=host:port`` the same tests run against an existing broker instead
(the ``kafka-apache`` GitHub workflow points it at an ``apache/kafka`` service container). Every
topic and group name gets a per-run prefix, so a long-lived broker can be reused; the tests only
create topics with replication 1 (a single-node Apache Kafka refuses more).

Everything the checks see is made with the launcher's helpers: single-record batches (exact high
watermarks on tansu), offsets committed without a group join (fast on both brokers).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from opsverify_sandbox.pki import CertificateAuthority
from opsverify_sandbox.process import free_port
from opsverify_sandbox.servers.kafka import (
    admin,
    commit_offsets,
    create_topic,
    make_lagging_group,
    produce,
    start_kafka,
)

EXTERNAL_ENV = "OPSVERIFY_TEST_KAFKA_BOOTSTRAP"
CHECKS = ["checks/test_kafka.py"]
TANSU_CLUSTER_ID = "tansu_cluster"

METADATA = "test_kafka_cluster_answers_metadata"
BROKERS = "test_kafka_has_min_brokers"
EXISTS = "test_topic_exists"
PARTITIONS = "test_topic_has_min_partitions"
REPLICATION = "test_topic_has_min_replication_factor"
INSYNC = "test_topic_has_min_insync_replicas"
LAG = "test_consumer_group_lag_within_threshold"
PARTITION_LAG = "test_consumer_group_partition_lag_within_threshold"
CANARY = "test_canary_round_trips_within_latency_budget"
TREND = "test_consumer_group_keeps_up_over_the_window"


@dataclass
class KafkaUnderTest:
    """The broker the checks run against, and the names this run made on it."""

    bootstrap: str
    external: bool  # given by OPSVERIFY_TEST_KAFKA_BOOTSTRAP (may be long-lived, shared)
    prefix: str
    tansu: bool = False  # the broker says it is tansu (cluster id): its quirks are asserted too

    def name(self, short: str) -> str:
        return f"{self.prefix}{short}"


def _wait_for_topics(bootstrap: str, names: list[str], timeout_s: float = 20.0) -> None:
    """Until every topic is in the metadata with a leader for each partition (Apache Kafka needs a
    moment after CreateTopics)."""
    client = admin(bootstrap)
    deadline = time.monotonic() + timeout_s
    while True:
        topics = client.list_topics(timeout=5).topics  # all topics: never name one (it may create it)
        ready = [
            n for n in names
            if n in topics and topics[n].partitions
            and all(p.leader >= 0 for p in topics[n].partitions.values())
        ]
        if len(ready) == len(names):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"topics not ready within {timeout_s:g} s: {sorted(set(names) - set(ready))}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaUnderTest]:
    """The broker with this run's topics and groups (see ``_provision``)."""
    prefix = f"ovt-{uuid.uuid4().hex[:8]}-"
    external = os.environ.get(EXTERNAL_ENV, "").strip()
    if external:
        under_test = KafkaUnderTest(external, True, prefix)
        try:
            _provision(under_test)
            yield under_test
        finally:
            _clean_up(under_test)
        return
    with start_kafka(tmp_path_factory.mktemp("kafka")) as server:
        under_test = KafkaUnderTest(server.bootstrap, False, prefix)
        _provision(under_test)
        yield under_test


def _provision(k: KafkaUnderTest) -> None:
    b = k.bootstrap
    k.tansu = admin(b).list_topics(timeout=10).cluster_id == TANSU_CLUSTER_ID
    create_topic(b, k.name("orders"), 3, config={"min.insync.replicas": "1"})
    create_topic(b, k.name("single"), 1)
    create_topic(b, k.name("lagged"), 2)
    create_topic(b, k.name("canary"), 1)
    made = ["orders", "single", "lagged", "canary"]
    if k.tansu:
        # tansu accepts any replication factor and lists its one broker three times
        create_topic(b, k.name("fake-rf3"), 1, replication=3)
        made.append("fake-rf3")
    _wait_for_topics(b, [k.name(n) for n in made])
    # caught-up: every record of orders consumed and committed
    produce(b, k.name("orders"), 6, partition=0)
    produce(b, k.name("orders"), 2, partition=2)
    commit_offsets(b, k.name("orders"), k.name("caught-up"), {0: 6, 1: 0, 2: 2})
    # lagging: 8 behind on lagged[0]; mild: 3 behind on lagged[1]
    make_lagging_group(b, k.name("lagged"), k.name("lagging"), committed=2, lag=8, partition=0)
    make_lagging_group(b, k.name("lagged"), k.name("mild"), committed=1, lag=3, partition=1)


def _clean_up(k: KafkaUnderTest) -> None:
    """Best effort: delete this run's topics and groups from a broker that outlives the tests."""
    client = admin(k.bootstrap)
    topics = [t for t in client.list_topics(timeout=10).topics if t.startswith(k.prefix)]
    groups = [k.name(g) for g in ("caught-up", "lagging", "mild")]
    futures = [*client.delete_topics(topics, request_timeout=10).values()] if topics else []
    futures += client.delete_consumer_groups(groups, request_timeout=10).values()
    for future in futures:
        try:
            future.result(15)
        except Exception:  # noqa: BLE001 - cleanup only
            pass


def _target(k: KafkaUnderTest, name: str, **extra: object) -> dict[str, object]:
    return {"name": name, "bootstrap": k.bootstrap, **extra}


def test_kafka_checks_pass_on_a_healthy_cluster_and_fail_on_each_fault(run_suite, kafka: KafkaUnderTest) -> None:
    n = kafka.name
    healthy = _target(
        kafka, "healthy", min_brokers=1,
        topics=[{"name": n("orders"), "partitions": 3, "replication_factor": 1, "min_insync_replicas": 1},
                {"name": n("single")}],
        groups=[{"name": n("caught-up"), "max_lag": {"warn": 1, "critical": 5}, "max_partition_lag": 0},
                {"name": n("mild"), "max_lag": {"warn": 2, "critical": 5}, "topics": [n("lagged")]}],
        canary={"topic": n("canary"), "max_latency_ms": 3000},
    )
    faulty = _target(
        kafka, "faulty", min_brokers=3,
        topics=[{"name": n("missing"), "partitions": 1, "replication_factor": 1, "min_insync_replicas": 1},
                {"name": n("single"), "partitions": 3},
                {"name": n("orders"), "replication_factor": 3, "min_insync_replicas": 2},
                {"name": n("lagged"), "min_insync_replicas": 2}]
        + ([{"name": n("fake-rf3"), "replication_factor": 3}] if kafka.tansu else []),
        groups=[{"name": n("lagging"), "max_lag": {"warn": 2, "critical": 5}, "max_partition_lag": 4},
                {"name": n("never"), "max_partition_lag": 10}],
        canary={"topic": n("no-canary-topic")},
    )
    slow_canary = _target(kafka, "slow-canary", canary={"topic": n("canary"), "max_latency_ms": 0.001})
    run = run_suite({"kafka": [healthy, faulty, slow_canary]}, paths=CHECKS)
    assert run.ret == 1, run.stdout

    # healthy: every check passes
    for check in (METADATA, BROKERS, CANARY):
        assert run.outcome(check, "healthy") == "passed", run.stdout
    for check in (EXISTS, PARTITIONS, REPLICATION, INSYNC):
        assert run.outcome(check, "healthy", item=n("orders")) == "passed", run.message(check, "healthy", item=n("orders"))
    assert run.outcome(EXISTS, "healthy", item=n("single")) == "passed"
    # a topic without a partitions expectation gets no partitions check at all
    assert not [r for r in run.records if r["check"] == PARTITIONS and r["item"] == n("single") and r["target"] == "healthy"]
    for check in (LAG, PARTITION_LAG):
        assert run.outcome(check, "healthy", item=n("caught-up")) == "passed", run.stdout
    mild = run.record(LAG, "healthy", item=n("mild"))
    assert mild["outcome"] == "passed", mild
    assert any("past the warning level 2 messages" in w for w in mild["warnings"]), mild
    assert mild["measured"][-1]["value"] == 3
    assert run.record(METADATA, "healthy")["measured"][0]["name"] == "metadata latency"

    # too few brokers
    assert run.outcome(BROKERS, "faulty") == "failed"
    assert "expected brokers in the cluster (ids " in run.message(BROKERS, "faulty")
    assert ">= 3, got 1" in run.message(BROKERS, "faulty")

    # missing topic: exists fails, and so does every expectation about it
    missing = n("missing")
    assert run.outcome(EXISTS, "faulty", item=missing) == "failed"
    assert f"expected topic {missing} to exist, got no such topic" in run.message(EXISTS, "faulty", item=missing)
    assert "(the cluster has " in run.message(EXISTS, "faulty", item=missing)  # names what is there
    if not kafka.external:  # a long-lived broker may have more topics than the message lists
        assert n("orders") in run.message(EXISTS, "faulty", item=missing)
    assert "[runbook kafka#topic-exists]" in run.message(EXISTS, "faulty", item=missing)
    assert "deploy/kafka/topics/" in run.message(EXISTS, "faulty", item=missing)
    for check in (PARTITIONS, REPLICATION, INSYNC):
        assert run.outcome(check, "faulty", item=missing) == "failed"
        assert "got no such topic" in run.message(check, "faulty", item=missing)

    # too few partitions
    single = n("single")
    assert run.outcome(PARTITIONS, "faulty", item=single) == "failed"
    assert f"expected partitions of {single} >= 3, got 1" in run.message(PARTITIONS, "faulty", item=single)

    # replication factor 1 where 3 is expected
    orders = n("orders")
    assert run.outcome(REPLICATION, "faulty", item=orders) == "failed"
    message = run.message(REPLICATION, "faulty", item=orders)
    assert f"expected distinct replicas per partition of {orders} (partition " in message
    assert ">= 3, got 1" in message
    if kafka.tansu:
        # created with replication 3 on one broker: the broker id listed thrice is still one replica
        fake = n("fake-rf3")
        assert run.outcome(REPLICATION, "faulty", item=fake) == "failed"
        assert "replicas on brokers 111, 111, 111) >= 3, got 1" in run.message(REPLICATION, "faulty", item=fake)

    # min.insync.replicas 1 where 2 is expected; unset (tansu reports nothing, Kafka its default 1)
    assert run.outcome(INSYNC, "faulty", item=orders) == "failed"
    assert f"expected min.insync.replicas of {orders} >= 2, got 1" in run.message(INSYNC, "faulty", item=orders)
    lagged = n("lagged")
    assert run.outcome(INSYNC, "faulty", item=lagged) == "failed"
    unset = run.message(INSYNC, "faulty", item=lagged)
    assert ("no min.insync.replicas reported" in unset) if kafka.tansu else ("got 1" in unset), unset

    # lagging group: total and worst partition over their thresholds
    lagging = n("lagging")
    assert run.outcome(LAG, "faulty", item=lagging) == "failed"
    message = run.message(LAG, "faulty", item=lagging)
    assert f"expected total lag of group {lagging} (1 partition of {lagged}; worst {lagged}[0] at 8" in message
    assert "<= 5 messages, got 8 messages" in message and "[runbook kafka#consumer-lag]" in message
    assert run.outcome(PARTITION_LAG, "faulty", item=lagging) == "failed"
    assert f"worst partition {lagged}[0] (committed 2, high watermark 10) <= 4 messages, got 8 messages" in run.message(
        PARTITION_LAG, "faulty", item=lagging)

    # a group that never committed is reported as such, not as zero lag
    never = n("never")
    for check in (LAG, PARTITION_LAG):
        assert run.outcome(check, "faulty", item=never) == "failed"
        message = run.message(check, "faulty", item=never)
        assert f"expected committed offsets for consumer group {never}" in message
        assert "no committed offsets" in message and "unknown, not zero" in message

    # canary: a missing topic is reported (and not created); a budget it cannot meet fails
    assert run.outcome(CANARY, "faulty") == "failed"
    assert f"got canary topic {n('no-canary-topic')} does not exist" in run.message(CANARY, "faulty")
    assert n("no-canary-topic") not in admin(kafka.bootstrap).list_topics(timeout=5).topics
    assert run.outcome(CANARY, "slow-canary") == "failed"
    assert f"expected canary round trip through {n('canary')} <= 0.001 ms, got" in run.message(CANARY, "slow-canary")
    assert "Traceback" not in run.stdout


def test_unreachable_cluster_errors_once_per_check_with_one_line_quickly(
    run_suite, kafka: KafkaUnderTest, tmp_path: Path
) -> None:
    closed = free_port()
    ca = CertificateAuthority.create("kafka selftest CA").write(tmp_path / "ca.pem")
    with socket.socket() as blackhole:  # accepts connections (kernel backlog), never answers
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(16)
        silent = blackhole.getsockname()[1]
        topics = [{"name": "orders", "partitions": 3}]
        groups = [{"name": "control-plane"}]
        env = {"kafka": [
            {"name": "down", "bootstrap": f"127.0.0.1:{closed}", "timeout_s": 5, "min_brokers": 1,
             "topics": topics, "groups": groups, "canary": {"topic": "canary"}},
            {"name": "silent", "bootstrap": f"127.0.0.1:{silent}", "timeout_s": 1.5, "topics": topics},
            {"name": "bad-login", "bootstrap": kafka.bootstrap, "security_protocol": "SASL_PLAINTEXT",
             "sasl": {"mechanism": "SCRAM-SHA-256", "username": {"env": "OPSVERIFY_SELFTEST_KAFKA_USER"},
                      "password": {"env": "OPSVERIFY_SELFTEST_KAFKA_PASSWORD"}}, "timeout_s": 5},
            {"name": "no-ca", "bootstrap": kafka.bootstrap, "ca_bundle": str(tmp_path / "missing-ca.pem")},
            {"name": "tls-to-plaintext", "bootstrap": kafka.bootstrap, "ca_bundle": str(ca), "timeout_s": 1.5},
            {"name": "no-secret", "bootstrap": kafka.bootstrap, "security_protocol": "SASL_PLAINTEXT",
             "sasl": {"username": {"env": "OPSVERIFY_SELFTEST_UNSET_KAFKA_USER"},
                      "password": {"env": "OPSVERIFY_SELFTEST_UNSET_KAFKA_PASSWORD"}}},
        ]}
        secrets = {"OPSVERIFY_SELFTEST_KAFKA_USER": "selftest-user",
                   "OPSVERIFY_SELFTEST_KAFKA_PASSWORD": "selftest-pw-3f9a1c"}
        started = time.monotonic()
        run = run_suite(env, env_vars=secrets, paths=CHECKS)
        elapsed = time.monotonic() - started
    assert run.ret == 1, run.stdout

    refused = f"Unreachable: cannot reach Kafka at 127.0.0.1:{closed}: connection refused"
    down = [r for r in run.records if r["target"] == "down"]
    # the trend check too: a cluster it cannot see is an error, not a skip for want of samples
    assert {r["check"] for r in down} == {METADATA, BROKERS, EXISTS, PARTITIONS, LAG, CANARY, TREND}
    for record in down:
        assert (record["outcome"], record["message"].split(" — could not see ", 1)[0]) == ("error", refused), record
    # refused is seen on the first metadata slice, long before the 5 s timeout
    assert max(r["duration_s"] for r in down) < 2.5, [(r["check"], r["duration_s"]) for r in down]

    assert run.outcome(METADATA, "silent") == "error"
    assert run.message(METADATA, "silent").startswith(
        f"ProbeTimeout: Kafka at 127.0.0.1:{silent}: no cluster metadata within 1.5 s")
    assert run.outcome(EXISTS, "silent", item="orders") == "error"

    # a SASL login against a plaintext listener: tansu rejects the mechanism; what Apache Kafka's
    # plaintext listener does with a SASL handshake (reject it, or drop the connection) is left open
    assert run.outcome(METADATA, "bad-login") == "error"
    login = run.message(METADATA, "bad-login")
    if kafka.tansu:
        assert login.startswith(f"Unreachable: cannot reach Kafka at {kafka.bootstrap}: authentication failed"), login
    assert "selftest-pw-3f9a1c" not in run.stdout + run.stderr + login

    assert run.cause(METADATA, "no-ca") == f"Unreachable: CA bundle {tmp_path / 'missing-ca.pem'} cannot be read"
    # TLS to a plaintext listener: the client is built with the CA bundle, the handshake never completes
    assert run.outcome(METADATA, "tls-to-plaintext") == "error"
    assert run.message(METADATA, "tls-to-plaintext").startswith(
        (f"ProbeTimeout: Kafka at {kafka.bootstrap}: no cluster metadata within 1.5 s",
         f"Unreachable: cannot reach Kafka at {kafka.bootstrap}: TLS handshake failed"))
    assert run.cause(METADATA, "no-secret") == "SecretMissing: secret OPSVERIFY_SELFTEST_UNSET_KAFKA_USER is not set"
    assert elapsed < 30
    assert "Traceback" not in run.stdout


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"bootstrap": ["kafka-0:9092", "kafka-1:9092"], "security_protocol": "PLAINTEXT",
          "sasl": {"username": {"env": "U"}, "password": {"env": "P"}}},
         "kafka[0] (target 'c1'): 'sasl' is set but security_protocol is PLAINTEXT"),
        ({"bootstrap": "kafka-0:9092,kafka-1"}, "kafka[0].bootstrap (target 'c1'): 'kafka-1' is not host:port"),
        ({"bootstrap": "k:9092", "security_protocol": "SASL_SSL"},
         "kafka[0] (target 'c1'): security_protocol SASL_SSL needs a 'sasl' block"),
        ({"bootstrap": "k:9092", "topics": [{"name": "a"}, {"name": "a"}]}, "'a' is listed twice"),
    ],
)
def test_kafka_section_errors_name_the_key(tmp_path: Path, section: dict[str, object], problem: str) -> None:
    """Validated when the environment file is loaded (a usage error before anything is probed)."""
    from opsverify.config.model import load_environment
    from opsverify.errors import ConfigError
    from tests.harness import write_env

    path = write_env(tmp_path, {"kafka": [{"name": "c1", **section}]})
    with pytest.raises(ConfigError) as info:
        load_environment(path)
    assert problem in str(info.value)


def test_unknown_bootstrap_name_is_an_error_naming_the_dns_failure(run_suite) -> None:
    """Runs in its own network namespace so the lookup never leaves the machine."""
    env = {"kafka": [{"name": "nowhere", "bootstrap": "no-such-kafka.opsverify.invalid:9092", "timeout_s": 3}]}
    run = run_suite(env, "-k", "metadata", paths=CHECKS, netns=True)
    assert run.outcome(METADATA, "nowhere") == "error"
    assert run.message(METADATA, "nowhere").startswith(
        "Unreachable: cannot reach Kafka at no-such-kafka.opsverify.invalid:9092: DNS lookup failed")
