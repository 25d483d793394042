"""Smoke tests of the real Kafka broker with kafka-python: bytes, keys, headers and ordering survive."""

from __future__ import annotations

import json
import uuid

from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

PAYLOAD = {"name": "张三", "company": "上海某某科技有限公司", "region": "华东", "note": "首次接触 — 展会名片"}


def producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", client_id="crm-smoke-producer",
                         max_in_flight_requests_per_connection=1)


def consume(bootstrap: str, topic: str, count: int) -> list[ConsumerRecord]:
    """Read `count` records from the beginning of `topic` as a new consumer group (30 s at most)."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"crm-smoke-{uuid.uuid4().hex[:8]}",
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=30_000)
    records: list[ConsumerRecord] = []
    try:
        for record in consumer:
            records.append(record)
            if len(records) == count:
                break
    finally:
        consumer.close()
    return records


def test_event_round_trips_with_key_header_and_chinese_payload(kafka_bootstrap: str, kafka_topic: str) -> None:
    key = "客户-0001".encode()
    value = json.dumps(PAYLOAD, ensure_ascii=False).encode("utf-8")
    headers = [("event-type", b"CustomerRegistered"), ("actor", "李娜".encode())]
    sender = producer(kafka_bootstrap)
    try:
        sent = sender.send(kafka_topic, key=key, value=value, headers=headers).get(timeout=30)
    finally:
        sender.close(timeout=10)

    [record] = consume(kafka_bootstrap, kafka_topic, 1)

    assert (record.topic, record.partition, record.offset) == (sent.topic, sent.partition, sent.offset)
    assert record.key == key
    assert record.headers == headers
    assert record.value == value
    assert json.loads(record.value.decode("utf-8")) == PAYLOAD


def test_events_with_the_same_key_land_in_one_partition_in_order(kafka_bootstrap: str, kafka_topic: str) -> None:
    key = b"customer-42"
    sender = producer(kafka_bootstrap)
    try:
        ours, others = [], []
        for step in ("first", "second"):
            ours.append(sender.send(kafka_topic, key=key, value=step.encode()))
            # Other customers' events in between, spread over the other partitions.
            others += [sender.send(kafka_topic, key=f"customer-{n}".encode(), value=b"other") for n in range(6)]
        sent = [future.get(timeout=30) for future in ours]
        for future in others:
            future.get(timeout=30)
    finally:
        sender.close(timeout=10)

    assert sent[0].partition == sent[1].partition
    assert sent[1].offset > sent[0].offset

    records = consume(kafka_bootstrap, kafka_topic, 2 + len(others))
    ours_back = [(r.partition, r.value) for r in records if r.key == key]
    assert ours_back == [(sent[0].partition, b"first"), (sent[0].partition, b"second")]
