"""Kafka canary probe: produce a unique message to the canary topic and time until it is
consumed back.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from opsverify.config.base import Safety
from opsverify.config.kafka import KafkaTarget
from opsverify.engine import ProbeContext
from opsverify.errors import ProbeTimeout, UnexpectedResponse
from opsverify.lazy import lazy_module
from opsverify.net.sampling import Timed, sample_latency
from opsverify.safety import permit
from opsverify.probes.kafka.client import _clean, _kafka_text, Budget, client_config
from opsverify.probes.kafka.facts import KafkaCanaryResult, KafkaMetadata

if TYPE_CHECKING:
    import confluent_kafka as ck
    from confluent_kafka import KafkaError, Message
else:
    ck = lazy_module("confluent_kafka")


async def canary(ctx: ProbeContext[KafkaTarget]) -> KafkaCanaryResult:
    """Produce one uniquely keyed record to the canary topic and read it back by partition+offset.

    No consumer group is joined or committed. A missing canary topic is reported, never created.
    """
    budget = Budget(ctx)  # the engine counts the timeout from the probe's start, so do we
    meta: KafkaMetadata = await ctx.depend("kafka_metadata")
    target = ctx.target
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
