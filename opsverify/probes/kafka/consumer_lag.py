"""Kafka consumer-group lag probe: the group's committed offsets against the partitions' high
watermarks.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from opsverify.config.kafka import KafkaGroup, KafkaTarget
from opsverify.engine import ProbeContext
from opsverify.errors import UnexpectedResponse
from opsverify.lazy import lazy_module
from opsverify.probes.kafka.client import _admin, _kafka_error, _kafka_text, _raise_if_timeout, Budget, KafkaAdmin, MARGIN_S
from opsverify.probes.kafka.facts import KafkaGroupLag, KafkaMetadata, PartitionLag

if TYPE_CHECKING:
    import confluent_kafka as ck
    # confluent_kafka.admin has no __all__: mypy --strict needs an ignore where its names are used
    import confluent_kafka.admin as ck_admin
else:
    ck = lazy_module("confluent_kafka")
    ck_admin = lazy_module("confluent_kafka.admin")


def _group(target: KafkaTarget, name: str | None) -> KafkaGroup:
    for group in target.groups:
        if group.name == name:
            return group
    raise UnexpectedResponse(f"no consumer group {name!r} in target {target.name}")


async def group_lag(ctx: ProbeContext[KafkaTarget]) -> KafkaGroupLag:
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
