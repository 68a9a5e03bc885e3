"""Kafka metadata and topic-config probes: the brokers and topics the cluster advertises (asked
in short slices, so that a misadvertised cluster still answers), and the configs of the expected topics.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from opsverify.config.kafka import KafkaTarget
from opsverify.engine import ProbeContext
from opsverify.errors import ProbeTimeout, UnexpectedResponse, Unreachable
from opsverify.lazy import lazy_module
from opsverify.probes.kafka_listeners import refused_brokers
from opsverify.probes.kafka.client import (
    MARGIN_S,
    Budget,
    KafkaAdmin,
    _admin,
    _clean,
    _fatal_cause,
    _kafka_error,
    _kafka_text,
    _raise_if_timeout,
    only_learned_brokers_failed,
)
from opsverify.probes.kafka.client_cert import raise_if_certificate_refused
from opsverify.probes.kafka.facts import KafkaMetadata, KafkaPartition, KafkaTopicConfigs, KafkaTopicInfo

if TYPE_CHECKING:
    import confluent_kafka as ck
    # confluent_kafka.admin has no __all__: mypy --strict needs an ignore where its names are used
    import confluent_kafka.admin as ck_admin
else:
    ck = lazy_module("confluent_kafka")
    ck_admin = lazy_module("confluent_kafka.admin")


#: Metadata is asked in slices this long, so a refused connection is reported within about this.
METADATA_SLICE_S = 0.5


# -- probes ---------------------------------------------------------------------------------------
async def metadata(ctx: ProbeContext[KafkaTarget]) -> KafkaMetadata:
    """Brokers, controller and all topics of the target's cluster (one request, shared)."""
    admin = _admin(ctx)
    budget = Budget(ctx)
    ctx.phase = f"asking {budget.where} for cluster metadata"
    try:
        found: KafkaMetadata = await ctx.run_sync(_metadata_sync, admin, budget)
    except Unreachable as exc:
        await raise_if_certificate_refused(ctx, exc)
        raise
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
            errors = admin.errors_since(mark)
            fatal = _fatal_cause(errors)
            if fatal is not None:
                raise Unreachable(f"cannot reach Kafka at {budget.where}: {fatal}") from None
            if only_learned_brokers_failed(errors):
                # the shared client lost its bootstrap to brokers that refuse: a new client's first
                # request goes to the bootstrap again
                try:
                    meta = admin.fresh().client.list_topics(timeout=budget.left("the metadata request"))
                    break
                except ck.KafkaException as again:
                    last = again
                    continue
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


async def topic_configs(ctx: ProbeContext[KafkaTarget]) -> KafkaTopicConfigs:
    """The configs of every listed topic that has a ``min_insync_replicas`` expectation (one request)."""
    budget = Budget(ctx)  # the engine counts the timeout from the probe's start, so do we
    meta: KafkaMetadata = await ctx.depend("kafka_metadata")
    target = ctx.target
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
