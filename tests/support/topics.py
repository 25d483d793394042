"""Reading a whole Kafka topic in tests: every partition from its start to its end offset as of the call, without
a consumer group (no join, no rebalance) and without waiting for a timeout to tell that nothing more comes."""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer
from kafka.structs import TopicPartition


def read_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Any]:
    """Every record the topic holds now, partition by partition, each in offset order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        records: dict[TopicPartition, list[Any]] = {tp: [] for tp in partitions}
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end within {timeout} s"
            for tp, batch in consumer.poll(timeout_ms=200).items():
                records[tp].extend(r for r in batch if r.offset < ends[tp])
        return [record for tp in partitions for record in records[tp]]
    finally:
        consumer.close()
