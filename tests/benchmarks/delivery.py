"""Delivery latency (command accepted → seen by a consumer of the relay's topic) and relay throughput."""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID

from kafka import KafkaConsumer, TopicPartition

from domain.base import Meta
from gateways.kafka.cloudevents import encode
from gateways.kafka.relay import RELAY_NAME, KafkaRelay, producer_for
from projections.funnel import percentile
from services.application import CrmApplication
from services.commands import ChangeStage, OpenDeal, RegisterCustomer
from services.storage.read_model_store import ReadModelStore
from tests.benchmarks.harness import Bench, Metric, log, ratio

TARGET_P99_MS = 250
STAGES = ("first_contact", "needs_analysis")  # each command moves its deal to the other one
DEALS = 50
BATCH = 2000  # the relay's default batch
SETTLE_SECONDS = 15  # how long to wait for the last events to be seen


def open_deals(app: CrmApplication, count: int) -> list[UUID]:
    meta = Meta(actor="benchmark")
    customer = app.register_customer(RegisterCustomer("压测客户", "华东", "制造业", "web", company="压测有限公司"), meta)
    return [app.open_deal(OpenDeal(customer, f"压测商机 {n}", "1000",
                                   owner="benchmark"), meta) for n in range(count)]


def relay_head(relay: KafkaRelay, limit: int) -> tuple[int, float]:
    """Publish the first `limit` events of the log, in the relay's batches: events and seconds."""
    published, started = 0, time.perf_counter()
    while published < limit and (count := relay.run_batch(min(BATCH, limit - published))) > 0:
        published += count
    return published, time.perf_counter() - started


def fast_forward(relay: KafkaRelay, position: int) -> None:
    """Move the relay to `position` without publishing (the latency test needs only what comes next)."""
    with relay.store.transaction() as cursor:
        cursor.execute("UPDATE projection_positions SET position = ? WHERE name = ?", (position, RELAY_NAME))


def raw_producer(bench: Bench, topic: str, limit: int) -> tuple[int, float]:
    """The relay's first `limit` messages sent by a bare producer in the relay's batches: messages, seconds."""
    app, producer = bench.app, producer_for(bench.bootstrap)
    sent, seconds, position = 0, 0.0, 0
    while sent < limit:
        notifications = bench.app.recorder.select_notifications(position, min(BATCH, limit - sent),
                                                                inclusive_of_start=False)
        if not notifications:
            break
        messages = [(str(n.originator_id).encode(), *encode(app.mapper.to_domain_event(n), n.id))
                    for n in notifications]
        started = time.perf_counter()
        for key, headers, value in messages:
            producer.send(topic, key=key, value=value, headers=headers)
        producer.flush()
        seconds += time.perf_counter() - started
        sent, position = sent + len(messages), notifications[-1].id
    producer.close()
    return sent, seconds


class Watcher(threading.Thread):
    """Notes when each event id (ce_id) is first seen on the topic, from its end onwards."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
        partitions = [TopicPartition(topic, p) for p in sorted(self._consumer.partitions_for_topic(topic))]
        self._consumer.assign(partitions)
        self._consumer.seek_to_end()
        for partition in partitions:
            self._consumer.position(partition)  # resolve "the end" now, before any command

    def run(self) -> None:
        while not self.stop.is_set():
            for records in self._consumer.poll(timeout_ms=50).values():
                now = time.perf_counter()
                for record in records:
                    self.seen.setdefault(dict(record.headers)["ce_id"].decode(), now)
        self._consumer.close()


def send_commands(app: CrmApplication, deals: list[UUID], rate: int, seconds: int) -> dict[str, float]:
    """Stage changes at a steady rate: when each was accepted, by event id."""
    accepted: dict[str, float] = {}
    started = time.perf_counter()
    for n in range(rate * seconds):
        time.sleep(max(0.0, started + n / rate - time.perf_counter()))
        deal = deals[n % len(deals)]
        stage = STAGES[(n // len(deals)) % 2]
        version = app.change_stage(ChangeStage(deal, stage, "压测"), Meta(actor="benchmark"))
        accepted[f"{deal}:{version}"] = time.perf_counter()
    return accepted


def latencies(bench: Bench, relay: KafkaRelay, deals: list[UUID]) -> tuple[list[float], int]:
    """Milliseconds from acceptance to being seen, for every command seen; and how many were never seen."""
    watcher, stop = Watcher(bench.bootstrap, relay.topic), threading.Event()
    follower = threading.Thread(target=relay.follow, args=(stop,), daemon=True)
    watcher.start()
    follower.start()
    try:
        accepted = send_commands(bench.app, deals, bench.plan.delivery_rate, bench.plan.delivery_seconds)
        deadline = time.perf_counter() + SETTLE_SECONDS
        while not accepted.keys() <= watcher.seen.keys() and time.perf_counter() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        watcher.stop.set()
        follower.join()
        watcher.join()
    seen = [(watcher.seen[key] - at) * 1000 for key, at in accepted.items() if key in watcher.seen]
    return seen, len(accepted) - len(seen)


def measure(bench: Bench) -> list[Metric]:
    app, plan = bench.app, bench.plan
    relay_topic, raw_topic = bench.topic(), bench.topic()
    relay_store = ReadModelStore(app.database)
    relay = KafkaRelay(app, relay_store, producer_for(bench.bootstrap), relay_topic)
    try:
        log(f"relay: publishing the first {plan.relay_sample:,} events of the log, then the same with a raw producer")
        published, relay_seconds = relay_head(relay, plan.relay_sample)
        sent, raw_seconds = raw_producer(bench, raw_topic, published)
        fast_forward(relay, app.event_count())
        deals = open_deals(app, DEALS)
        log(f"delivery latency: {plan.delivery_rate} stage changes/s for {plan.delivery_seconds} s")
        measured, lost = latencies(bench, relay, deals)
    finally:
        relay.producer.close()
        relay_store.close()
    p50, p99 = percentile(measured, 0.5), percentile(measured, 0.99)
    relay_rate, raw_rate = published / relay_seconds, sent / raw_seconds
    details: dict[str, Any] = {
        "commands": len(measured) + lost, "rate_per_s": plan.delivery_rate, "lost": lost,
        "p50_ms": round(p50 or 0, 1), "p99_ms": round(p99 or 0, 1), "max_ms": round(max(measured, default=0), 1),
        "path": "app.change_stage returns → KafkaRelay.follow in a thread (polls every 50 ms when idle) → "
                "broker (acks=all) → KafkaConsumer.poll in a thread"}
    return [
        Metric("delivery_latency", round(p99 or 0, 1), "ms (p99)", None, None, None, f"p99 < {TARGET_P99_MS} ms",
               p99 is not None and p99 < TARGET_P99_MS and lost == 0, details),
        Metric("relay_throughput", round(relay_rate), "events/s",
               f"raw kafka-python producer (producer_for settings) sending the same {sent:,} messages, "
               f"flushed per {BATCH:,} like the relay", round(raw_rate), ratio(relay_rate, raw_rate),
               "none set (informational)", None,
               {"events": published, "seconds": round(relay_seconds, 2), "raw_seconds": round(raw_seconds, 2),
                "sample": f"the first {published:,} events of the log; the relay is then moved to the head "
                          "for the latency test",
                "relay_does": "read the log, decode, learn keys, encode CloudEvents, send, flush, commit position"}),
    ]
