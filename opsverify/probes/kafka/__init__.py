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

from opsverify.probes.kafka.facts import (
    KafkaPartition, KafkaTopicInfo, KafkaMetadata, KafkaTopicConfigs, PartitionLag, KafkaGroupLag,
    KafkaCanaryResult,
)
from opsverify.probes.kafka.client import (
    MARGIN_S, KafkaAdmin, client_config, Budget,
)
from opsverify.probes.kafka.topics import (
    METADATA_SLICE_S, metadata, topic_configs,
)
from opsverify.probes.kafka.consumer_lag import (
    group_lag,
)
from opsverify.probes.kafka.canary_roundtrip import (
    canary,
)

__all__ = [
    "METADATA_SLICE_S", "MARGIN_S", "KafkaPartition", "KafkaTopicInfo", "KafkaMetadata", "KafkaTopicConfigs",
    "PartitionLag", "KafkaGroupLag", "KafkaCanaryResult", "KafkaAdmin", "client_config", "Budget", "metadata",
    "topic_configs", "group_lag", "canary",
]
