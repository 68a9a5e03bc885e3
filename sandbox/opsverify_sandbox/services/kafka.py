"""The Kafka broker of the sandbox: tansu (Kafka-compatible, in memory) with the local topics and group.

Port (fixed, as ``environments/local.yaml`` names it): 19092. At every start it creates

* ``kernel.proposals`` (3 partitions, ``min.insync.replicas=1``) with 12 records,
* ``opsverify.canary`` (1 partition) for the canary round trip,
* consumer group ``control-plane`` with offsets committed at the end of ``kernel.proposals`` (lag 0).

Storage is in memory: a restarted broker is provisioned afresh.
"""

from __future__ import annotations

from pathlib import Path

from opsverify.errors import SandboxError
from opsverify_sandbox.manager import Started, service
from opsverify_sandbox.servers.kafka import (
    commit_offsets,
    create_topic,
    high_watermarks,
    produce,
    start_kafka,
)

KAFKA_PORT = 19092
TOPIC = "kernel.proposals"
CANARY_TOPIC = "opsverify.canary"
GROUP = "control-plane"


@service("kafka", order=30)
def start_kafka_broker(directory: Path) -> Started:
    """Kafka-protocol broker (tansu): kernel.proposals, opsverify.canary, group control-plane."""
    server = start_kafka(directory / "kafka", port=KAFKA_PORT)
    try:
        bootstrap = server.bootstrap
        create_topic(bootstrap, TOPIC, 3, config={"min.insync.replicas": "1"})
        create_topic(bootstrap, CANARY_TOPIC, 1)
        for partition in range(3):
            produce(bootstrap, TOPIC, 4, partition=partition, key_prefix=f"p{partition}-")
        commit_offsets(bootstrap, TOPIC, GROUP, high_watermarks(bootstrap, TOPIC))
    except SandboxError:
        server.stop()
        raise
    return Started([server.process], {"kafka": KAFKA_PORT}, {"bootstrap": bootstrap})
