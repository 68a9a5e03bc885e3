"""Kafka clusters are reachable, have their brokers and topics as provisioned, and consumers keep up."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.smoke, pytest.mark.predeploy]


def _names(names, limit=8):
    if not names:
        return "none"
    more = f", … ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


@pytest.mark.runbook("kafka#metadata")
@pytest.mark.severity("critical")
def test_kafka_cluster_answers_metadata(kafka_metadata, target, expect):
    expect.record("metadata latency", kafka_metadata.latency_ms, unit="ms")
    expect.fact("cluster_id", kafka_metadata.cluster_id)
    expect.fact("brokers", sorted(kafka_metadata.brokers))
    expect.that(
        bool(kafka_metadata.brokers),
        expected=f"cluster metadata from {target.bootstrap} listing at least one broker",
        actual="metadata with no brokers",
    )
    refused = "; ".join(f"broker {b} at {kafka_metadata.brokers[b]}: {why}" for b, why in kafka_metadata.refused.items())
    expect.that(
        not kafka_metadata.refused,
        expected=f"every broker the metadata from {target.bootstrap} lists to accept connections at its advertised address",
        actual=refused,
        action="clients bootstrap, then cannot reach these brokers: correct the brokers' advertised.listeners "
               "(host names and ports reachable from the clients), or the route to them",
    )


@pytest.mark.configured("min_brokers")
@pytest.mark.runbook("kafka#brokers")
@pytest.mark.severity("critical")
def test_kafka_has_min_brokers(kafka_metadata, target, expect):
    ids = ", ".join(str(b) for b in sorted(kafka_metadata.brokers)) or "none"
    expect.at_least(
        len(kafka_metadata.brokers), target.min_brokers, what=f"brokers in the cluster (ids {ids})"
    )


@pytest.mark.each("topics")
@pytest.mark.runbook("kafka#topic-exists")
@pytest.mark.severity("critical")
def test_topic_exists(kafka_metadata, target_item, expect):
    existing = kafka_metadata.user_topics()
    expect.that(
        kafka_metadata.topic(target_item.name) is not None,
        expected=f"topic {target_item.name} to exist",
        actual=f"no such topic (the cluster has {len(existing)}: {_names(existing)})",
    )


@pytest.mark.configured("partitions")
@pytest.mark.each("topics")
@pytest.mark.runbook("kafka#topic-partitions")
def test_topic_has_min_partitions(kafka_metadata, target_item, expect):
    topic = kafka_metadata.topic(target_item.name)
    expect.that(
        topic is not None,
        expected=f"topic {target_item.name} with at least {target_item.partitions} partition(s)",
        actual="no such topic",
    )
    expect.at_least(topic.partition_count, target_item.partitions, what=f"partitions of {topic.name}")


@pytest.mark.configured("replication_factor")
@pytest.mark.each("topics")
@pytest.mark.runbook("kafka#topic-replication")
def test_topic_has_min_replication_factor(kafka_metadata, target_item, expect):
    topic = kafka_metadata.topic(target_item.name)
    expect.that(
        topic is not None,
        expected=f"topic {target_item.name} replicated to at least {target_item.replication_factor} brokers",
        actual="no such topic",
    )
    weakest = topic.weakest_partition
    where = (
        f" (partition {weakest.id} replicas on brokers {', '.join(map(str, weakest.replicas)) or 'none'})"
        if weakest is not None else " (no partitions)"
    )
    expect.at_least(
        topic.replication_factor,
        target_item.replication_factor,
        what=f"distinct replicas per partition of {topic.name}{where}",
    )


@pytest.mark.configured("min_insync_replicas")
@pytest.mark.each("topics")
@pytest.mark.runbook("kafka#topic-min-insync")
def test_topic_has_min_insync_replicas(kafka_metadata, kafka_topic_configs, target_item, expect):
    expect.that(
        kafka_metadata.topic(target_item.name) is not None,
        expected=f"topic {target_item.name} with min.insync.replicas >= {target_item.min_insync_replicas}",
        actual="no such topic",
    )
    value = kafka_topic_configs.value(target_item.name, "min.insync.replicas")
    expect.that(
        value is not None and value.strip().isdigit(),
        expected=f"min.insync.replicas of {target_item.name} >= {target_item.min_insync_replicas}",
        actual="no min.insync.replicas reported for the topic" if value is None else f"{value!r}",
    )
    expect.at_least(
        int(value), target_item.min_insync_replicas, what=f"min.insync.replicas of {target_item.name}"
    )


def _require_commits_within_the_log(lag, expect):
    __tracebackhide__ = True
    past = lag.past_end
    expect.that(
        not past,
        expected=f"committed offsets of group {lag.group} within the log (at most its high watermark)",
        actual="; ".join(f"{p} committed {p.committed:,}, high watermark {p.high_watermark:,}" for p in past)
        + " — the commit is past the log end, so the lag is unknown, not zero",
        action="the topic was recreated or truncated under the group: on its next fetch the group resets by "
               "auto.offset.reset (skipping or re-reading records); decide where it must resume and reset its "
               "offsets to that (kafka-consumer-groups --reset-offsets)",
    )


def _lag_context(lag):
    for topic in lag.uncommitted_topics:
        yield f"group {lag.group} has no committed offsets on topic {topic}"
    for topic in lag.deleted_topics:
        yield f"group {lag.group} has offsets for topic {topic}, which no longer exists"


@pytest.mark.each("groups")
@pytest.mark.runbook("kafka#consumer-lag")
@pytest.mark.severity("critical")
def test_consumer_group_lag_within_threshold(kafka_group_lag, target_item, expect):
    lag = kafka_group_lag
    for note in _lag_context(lag):
        expect.warn(note)
    members = lag.describe_members()
    expect.that(
        lag.has_commits,
        expected=f"committed offsets for consumer group {lag.group} "
        f"(lag <= {target_item.max_lag.critical:g} messages)",
        actual="no committed offsets — the group never committed or its offsets expired; "
        "its lag is unknown, not zero" + (f" ({members})" if members else ""),
    )
    _require_commits_within_the_log(lag, expect)
    worst = lag.worst
    expect.record("max partition lag", worst.lag, unit="messages")
    count = len(lag.partitions)
    detail = f"{count} partition{'s' if count != 1 else ''} of {', '.join(lag.topics)}; "
    detail += f"worst {worst} at {worst.lag:,}"
    if members:
        detail += f"; {members}"
    expect.at_most(
        lag.total_lag, target_item.max_lag, what=f"total lag of group {lag.group} ({detail})", unit="messages"
    )


@pytest.mark.configured("max_partition_lag")
@pytest.mark.each("groups")
@pytest.mark.runbook("kafka#consumer-lag")
def test_consumer_group_partition_lag_within_threshold(kafka_group_lag, target_item, expect):
    lag = kafka_group_lag
    expect.that(
        lag.has_commits,
        expected=f"committed offsets for consumer group {lag.group}",
        actual="no committed offsets — the group never committed or its offsets expired; "
        "its lag is unknown, not zero",
    )
    _require_commits_within_the_log(lag, expect)
    worst = lag.worst
    expect.at_most(
        worst.lag,
        target_item.max_partition_lag,
        what=f"lag of group {lag.group} on its worst partition {worst} "
        f"(committed {worst.committed:,}, high watermark {worst.high_watermark:,})",
        unit="messages",
    )


@pytest.mark.configured("canary")
@pytest.mark.mutating
@pytest.mark.runbook("kafka#canary")
def test_canary_round_trips_within_latency_budget(kafka_canary, target, expect):
    budget = target.canary.max_latency_ms
    expect.that(
        kafka_canary.ok,
        expected=f"a canary record produced to {kafka_canary.topic} and read back within "
        f"{budget.describe('ms')}",
        actual=kafka_canary.error or "no round trip",
    )
    expect.fact("canary_partition", kafka_canary.partition)
    expect.latency_at_most(kafka_canary.reading, budget, what=f"canary round trip through {kafka_canary.topic}")


@pytest.mark.trend
@pytest.mark.each("groups")
@pytest.mark.runbook("kafka#consumer-trend")
@pytest.mark.severity("critical")
def test_consumer_group_keeps_up_over_the_window(kafka_group_lag, trend_series, target_item, expect):
    """Judged over --samples like Burrow: stalled, lag growing in every sample, or no commit for too long."""
    lag = kafka_group_lag
    trend_series.add(lag, {str(p): (p.committed, p.lag) for p in lag.partitions})
    trend_series.judge(expect, f"consumer group {lag.group}", "committed offset",
                       max_age_s=target_item.max_commit_age_s)
