"""The outbox relay: publishes the event log, in order, to Kafka topic `crm.events`, at least once.

It follows the log from a stored position. Each batch is produced, flushed and acknowledged by the
broker before the new position (and the aggregate → customer keys it learnt) is committed, so a
crash or a broker outage re-sends (same `ce_id`, consumers deduplicate) and never loses an event.

The topic has one Kafka partition per home partition (`domain.partitions`, 64): an event goes to its
record's home partition, so one customer's events — its leads', deals', tickets' — stay together and in
order, and a consumer group can share the partitions out. A deal or ticket goes where its customer is:
for records made before home partitions its id's bits say nothing, and the customer (learnt from
Deal.Opened / Ticket.Opened in `relay_subjects`) is what the read models join on. Reference data
(pipelines, vocabularies, rates, campaigns) belongs to no partition: each is sent to every partition this
relay's shard owns, so every consumer sees it in order with the events that use it. The message key stays
the customer the event is about (or the record itself).

One relay per shard (`shard`), its position in the default shard's read store (`kafka-relay` for the
default shard, `kafka-relay:<shard>` for the others). Besides the CloudEvent, each message carries the
stored event's topic and state (headers `crm_topic`, `crm_state`): the CRM's own consumers rebuild the
very event the log's mapper gives (gateways/kafka/projection_consumer.py).
Personal fields are published as they are stored, sealed with the key of the person they are about
(`services/keys/key_store.py`): forgetting the person blinds every copy on Kafka and downstream.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.partitions import PARTITIONS, is_reference, partition_of
from domain.reminder_rules import Reminder
from domain.segment_change_rules import SegmentChange
from domain.ticket import Ticket
from gateways.kafka.cloudevents import encode
from projections.read_model import Rows
from projections.tables import Table
from services.application import CrmApplication
from services.healing import FIRST_PAUSE, LONGEST_PAUSE, TRANSIENT_DATABASE_ERRORS, Backoff, follow_until_stopped
from services.projection_runtime.projector import advance_position, start_positions
from services.storage.read_model_store import ReadModelStore

TOPIC = "crm.events"
REMINDERS_TOPIC = "crm.reminders"  # each Reminder.Emitted once more, keyed by its item, for mail/IM/task tools
SEGMENTS_TOPIC = "crm.segments"  # each SegmentChange.Recorded once more, keyed by its customer, for marketing tools
RELAY_NAME = "kafka-relay"
log = logging.getLogger(__name__)
SUBJECTS = Table("relay_subjects", (("aggregate_id", "TEXT"), ("customer_id", "TEXT")), ("aggregate_id",))


class RelayStalled(RuntimeError):
    """The broker did not acknowledge a batch; the position was not moved."""


class TopicMismatch(RuntimeError):
    """The events topic exists with another number of partitions than the home partitions."""


def relay_name(shard: int = 0) -> str:
    """Where the relay of `shard` keeps its position (the default shard's keeps today's name)."""
    return RELAY_NAME if shard == 0 else f"{RELAY_NAME}:{shard}"


def customer_of(event: Any, rows: Rows) -> UUID | None:
    """The customer an event is about, where it is about one (learning it from Opened events)."""
    if isinstance(event, Customer.Event):
        return event.originator_id
    if isinstance(event, (Deal.Opened, Ticket.Opened)):
        rows.put(SUBJECTS, {"aggregate_id": str(event.originator_id), "customer_id": str(event.customer_id)})
        return event.customer_id
    if isinstance(event, (Deal.Event, Ticket.Event)):
        known = rows.get(SUBJECTS, str(event.originator_id))
        return UUID(known["customer_id"]) if known else None
    if isinstance(event, Lead.Converted):
        rows.put(SUBJECTS, {"aggregate_id": str(event.originator_id), "customer_id": str(event.customer_id)})
        return event.customer_id
    if isinstance(event, Lead.RespondedToCampaign):  # a converted lead's response is about its customer
        known = rows.get(SUBJECTS, str(event.originator_id))
        return UUID(known["customer_id"]) if known else None
    if isinstance(event, Campaign.ResponseRecorded):  # in a log from before home partitions: the same fact
        return event.customer_id
    if isinstance(event, SegmentChange.Recorded):
        return event.customer_id
    return None


def home_partition(event: Any, customer: UUID | None) -> int | None:
    """The Kafka partition of an event: its record's home partition (a deal's or ticket's customer's, when
    known), None for reference data (sent to every partition)."""
    if is_reference(type(event).__qualname__.split(".")[0]):
        return None
    if isinstance(event, (Deal.Event, Ticket.Event)) and customer is not None:
        return partition_of(customer)
    return partition_of(event.originator_id)


class KafkaRelay:
    def __init__(self, app: CrmApplication, store: ReadModelStore, producer: KafkaProducer, topic: str = TOPIC,
                 ack_timeout: float = 30.0, new_producer: Callable[[], KafkaProducer] | None = None,
                 shard: int = 0, partitions: Sequence[int] = range(PARTITIONS),
                 reminders_topic: str | None = None, segments_topic: str | None = None) -> None:
        """`app` is the application of `shard`'s log, `store` the default shard's read store, `partitions` the
        home partitions that shard owns (where its reference events go). `new_producer` replaces the producer
        after the broker failed to acknowledge a batch (see follow). `reminders_topic`: where reminders go too
        (`crm relay` says REMINDERS_TOPIC, made by `ensure_events_topic`; in the batch of their log position, so
        acknowledged with it; None: only to `topic`); `segments_topic` likewise for segment changes (SEGMENTS_TOPIC)."""
        self.new_producer = new_producer
        self.app = app
        self.store = store
        self.producer = producer
        self.topic = topic
        self.ack_timeout = ack_timeout
        self.shard, self.name, self.partitions = shard, relay_name(shard), list(partitions)
        self.copies = {Reminder.Emitted: reminders_topic, SegmentChange.Recorded: segments_topic}
        for copied in (topic, reminders_topic, segments_topic):
            if copied:
                check_partitions(copied, producer.partitions_for(copied))
        with store.transaction() as cursor:
            for statement in SUBJECTS.ddl():
                cursor.execute(statement)
            start_positions(cursor, [self.name])

    def position(self) -> int:
        return self.store.query("SELECT position FROM projection_positions WHERE name = ?", (self.name,))[0][0]

    def start_over(self) -> None:
        """Publish the whole log again from its first event (to a topic that lost it)."""
        with self.store.transaction() as cursor:
            cursor.execute("UPDATE projection_positions SET position = 0 WHERE name = ?", (self.name,))

    def run_batch(self, limit: int = 2000) -> int:
        """Publish the next batch; returns how many events were published (0 = caught up)."""
        start = self.position()
        notifications = self.app.recorder.select_notifications(start, limit, inclusive_of_start=False)
        if not notifications:
            return 0
        with self.store.transaction() as cursor:  # short: learn the keys, write nothing yet
            rows = Rows(cursor, [SUBJECTS])
            messages = [self._message(notification, rows) for notification in notifications]
        futures = [self.producer.send(self.topic, key=key, value=value, headers=headers, partition=partition)
                   for key, partitions, headers, value, _ in messages for partition in partitions]
        # a reminder keyed by its item, a segment change by its customer, in its home partition (its id's): in order
        futures += [self.producer.send(copy[0], key=str(copy[1]).encode(), value=value, headers=headers,
                                       partition=partitions[0])
                    for _, partitions, headers, value, copy in messages if copy is not None]
        self.producer.flush(timeout=self.ack_timeout)
        failed = next((f for f in futures if not f.succeeded()), None)
        if failed is not None:
            _log_publish_failure(start, len(messages), failed.exception)
            raise RelayStalled(f"broker did not acknowledge the batch after position {start}: "
                               f"{failed.exception or 'timed out'}")
        with self.store.transaction() as cursor:
            rows.flush(cursor)
            if not advance_position(cursor, self.name, start, notifications[-1].id):
                raise RelayStalled("another relay moved the position; this batch will be re-sent by one of us")
        return len(notifications)

    def _message(self, notification: Any, rows: Rows
                 ) -> tuple[bytes, list[int], list[tuple[str, bytes]], bytes, tuple[str, UUID] | None]:
        """Key, Kafka partitions, headers and value of a stored event, and the topic and key of its copy (a
        reminder's: its item; a segment change's: its customer; None: no copy). Personal data stays sealed."""
        event = self.app.mapper.to_sealed_event(notification)
        customer = customer_of(event, rows)
        partition = home_partition(event, customer)
        headers, value = encode(event, notification.id)
        headers += [("ce_shard", str(self.shard).encode()), ("crm_topic", notification.topic.encode()),
                    ("crm_state", bytes(notification.state))]
        return (str(customer or event.originator_id).encode(),
                self.partitions if partition is None else [partition], headers, value, self._copy(event))

    def _copy(self, event: Any) -> tuple[str, UUID] | None:
        copy_to = self.copies.get(type(event))
        if not copy_to:
            return None
        return copy_to, event.item_id if isinstance(event, Reminder.Emitted) else event.customer_id

    def follow(self, stop: threading.Event, poll_seconds: float = 0.05, max_backoff: float = LONGEST_PAUSE) -> None:
        """Publish new events as they are recorded, until `stop` is set.

        While the broker or the database is away, the batch is retried with growing pauses up to
        `max_backoff` seconds (nothing is skipped: the position stays where it was), and publishing
        resumes by itself when they are back.
        """
        follow_until_stopped("relay", self._run_batch_renewing_the_producer, stop, poll_seconds,
                             (KafkaError, RelayStalled, *TRANSIENT_DATABASE_ERRORS),
                             Backoff(min(FIRST_PAUSE, max_backoff), max_backoff))

    def _run_batch_renewing_the_producer(self) -> int:
        """After a failed batch, the next attempt gets a new producer: with kafka-python 3.0 a producer that
        could not bootstrap (made while the broker was away) never recovers; a new one made too early is
        replaced again at its first failure."""
        try:
            return self.run_batch()
        except (KafkaError, RelayStalled):
            if self.new_producer is not None:
                log.warning("replacing the producer after a batch the broker did not acknowledge")
                stale, self.producer = self.producer, self.new_producer()
                close_in_background(stale)
            raise


def _log_publish_failure(start: int, events: int, error: Exception | None) -> None:
    """One line per batch the broker did not take (the retry that follows logs its own)."""
    log.warning("relay: the broker did not acknowledge %d events after log position %d: %s", events, start,
                error or "timed out", extra={"component": "relay", "action": "publish_failed", "position": start,
                                             "events": events, "cause": type(error).__name__ if error else "Timeout"})


def close_in_background(producer: KafkaProducer, seconds: float = 30.0) -> None:
    """Close a replaced producer without waiting: close() first flushes, and with records the broker never
    took that lasts until they expire (delivery timeout, 20 s) — close(timeout=0) raises instead of closing."""
    def close() -> None:
        try:
            producer.close(timeout=seconds)
        except KafkaError as error:
            log.info("a replaced producer did not close cleanly: %s", error)

    threading.Thread(target=close, name="close-replaced-producer", daemon=True).start()


def check_partitions(topic: str, partitions: set[int] | None) -> None:
    """TopicMismatch unless the topic has one partition per home partition (None: the broker does not know
    it yet — kafka-python says so before its first metadata — and creating it is the caller's business)."""
    if partitions is not None and len(partitions) != PARTITIONS:
        raise TopicMismatch(f"topic {topic} has {len(partitions)} partitions, but events are published by home "
                            f"partition, which needs {PARTITIONS}: delete it or publish to another topic (--topic)")


REPLICATION_VARIABLE = "CRM_KAFKA_REPLICATION_FACTOR"


def replication_factor(environ: Mapping[str, str] = os.environ) -> int:
    """Replicas of a topic the relay creates (CRM_KAFKA_REPLICATION_FACTOR, default 1: the single broker of
    deploy/; on a cluster set 3, or create `crm.events` yourself)."""
    text = environ.get(REPLICATION_VARIABLE, "").strip() or "1"
    if not text.isdigit() or int(text) < 1:
        raise TopicMismatch(f"{REPLICATION_VARIABLE} must be a whole number of replicas (1 or more), not {text!r}")
    return int(text)


def ensure_events_topic(bootstrap: str, topic: str = TOPIC) -> None:
    """Create the events topic with PARTITIONS partitions if missing (auto-creation would give the broker's
    default count); TopicMismatch if it exists with another count."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="crm-relay-admin", request_timeout_ms=30_000)
    try:
        try:
            admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=replication_factor())])
            log.info("created topic %s with %d partitions", topic, PARTITIONS)
        except TopicAlreadyExistsError:
            pass
        described = admin.describe_topics([topic])
        # kafka-python 3 says partition_index, 2.x partition
        check_partitions(topic, {p.get("partition_index", p.get("partition")) for d in described
                                 for p in d.get("partitions", [])} or None)
    finally:
        admin.close()


class TopicHeadReader:
    """Reads a topic's heads over one connection kept open: `crm serve` reads them every second for its
    queries' X-Read-Model-Lag (services.projection_runtime.partition_ends), where a new client each time
    would also redo the bootstrap and metadata round trips. Not thread-safe: one thread reads."""

    def __init__(self, bootstrap: str, topic: str = TOPIC, timeout_ms: int | None = None) -> None:
        self.topic, self.timeout_ms = topic, timeout_ms
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)

    def read(self) -> dict[int, int]:
        """Each partition's last offset (−1 when empty); {} while the topic does not exist. KafkaTimeoutError
        after `timeout_ms` (default: the client's request timeout, 30 s)."""
        found = self.consumer.partitions_for_topic(self.topic) or ()
        partitions = [TopicPartition(self.topic, p) for p in sorted(found)]
        return {tp.partition: end - 1 for tp, end in self.consumer.end_offsets(partitions, self.timeout_ms).items()}

    def close(self) -> None:
        self.consumer.close()


def topic_heads(bootstrap: str, topic: str = TOPIC) -> dict[int, int]:
    """Each partition's last offset (−1 when empty): what a read model's stored offset is compared with, and
    how a relay tells a topic that lost its history."""
    reader = TopicHeadReader(bootstrap, topic)
    try:
        return reader.read()
    finally:
        reader.close()


def check_topic_holds_history(bootstrap: str, topic: str, position: int) -> None:
    """TopicMismatch when the relay has published up to `position` but the topic holds nothing: it was deleted
    and created again (e.g. after the one-partition topic a broker auto-created was refused), and carrying on
    from the stored position would leave the first `position` events out of it — consumers would build read
    models without them and say nothing. `crm relay --from-start` publishes the whole log again."""
    if position == 0:
        return
    if all(head < 0 for head in topic_heads(bootstrap, topic).values()):
        raise TopicMismatch(f"the relay has published the log up to position {position:,}, but topic {topic} is "
                            "empty (deleted and created again?): its consumers would miss those events. Run "
                            "`crm relay --from-start` to publish the whole log to it (consumers de-duplicate "
                            "by ce_id)")


def producer_for(bootstrap: str) -> KafkaProducer:
    """An idempotent producer that waits for all in-sync replicas; ordering kept per partition. Retriable
    errors (a partition's leader moving: NotLeaderForPartition right after the topic is made or the broker
    restarts) are retried until the delivery timeout, not 5 times: 5 retries 100 ms apart ran out on a loaded
    machine while a new topic's 64 leaders were elected."""
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                         request_timeout_ms=10000, delivery_timeout_ms=20000, max_block_ms=10000)


def relay_lag(app: CrmApplication, store: ReadModelStore, shard: int = 0) -> int:
    """Events of `shard`'s log (`app`) not yet published: its head − the relay's position (for metrics)."""
    rows = store.query("SELECT position FROM projection_positions WHERE name = ?", (relay_name(shard),))
    return app.event_count() - (rows[0][0] if rows else 0)
