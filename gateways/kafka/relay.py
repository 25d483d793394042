"""The outbox relay: publishes the event log, in order, to Kafka topic `crm.events`, at least once.

It follows the log from a stored position. Each batch is produced, flushed and acknowledged by the
broker before the new position (and the aggregate → customer keys it learnt) is committed, so a
crash or a broker outage re-sends (same `ce_id`, consumers deduplicate) and never loses an event.
The message key is the customer the event is about, so one customer's events stay in order.
Personal fields are published as they are stored, sealed with the key of the person they are about
(`services/keys/key_store.py`): forgetting the person blinds every copy on Kafka and downstream.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID

from kafka import KafkaProducer
from kafka.errors import KafkaError

from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.ticket import Ticket
from gateways.kafka.cloudevents import encode
from projections.read_model import Rows
from projections.tables import Table
from services.application import CrmApplication
from services.healing import FIRST_PAUSE, LONGEST_PAUSE, TRANSIENT_DATABASE_ERRORS, Backoff, follow_until_stopped
from services.projection_runtime.projector import advance_position, start_positions
from services.storage.read_model_store import ReadModelStore

TOPIC = "crm.events"
RELAY_NAME = "kafka-relay"
log = logging.getLogger(__name__)
SUBJECTS = Table("relay_subjects", (("aggregate_id", "TEXT"), ("customer_id", "TEXT")), ("aggregate_id",))


class RelayStalled(RuntimeError):
    """The broker did not acknowledge a batch; the position was not moved."""


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
    return None


def partition_key(event: Any, rows: Rows) -> bytes:
    customer = customer_of(event, rows)
    return str(customer or event.originator_id).encode()


class KafkaRelay:
    def __init__(self, app: CrmApplication, store: ReadModelStore, producer: KafkaProducer, topic: str = TOPIC,
                 ack_timeout: float = 30.0, new_producer: Callable[[], KafkaProducer] | None = None) -> None:
        """`new_producer` replaces the producer after the broker failed to acknowledge a batch (see follow)."""
        self.new_producer = new_producer
        self.app = app
        self.store = store
        self.producer = producer
        self.topic = topic
        self.ack_timeout = ack_timeout
        with store.transaction() as cursor:
            for statement in SUBJECTS.ddl():
                cursor.execute(statement)
            start_positions(cursor, [RELAY_NAME])

    def position(self) -> int:
        return self.store.query("SELECT position FROM projection_positions WHERE name = ?", (RELAY_NAME,))[0][0]

    def run_batch(self, limit: int = 2000) -> int:
        """Publish the next batch; returns how many events were published (0 = caught up)."""
        start = self.position()
        notifications = self.app.recorder.select_notifications(start, limit, inclusive_of_start=False)
        if not notifications:
            return 0
        with self.store.transaction() as cursor:  # short: learn the keys, write nothing yet
            rows = Rows(cursor, [SUBJECTS])
            messages = []
            for notification in notifications:
                event = self.app.mapper.to_sealed_event(notification)  # personal data stays sealed on Kafka
                messages.append((partition_key(event, rows), *encode(event, notification.id)))
        futures = [self.producer.send(self.topic, key=key, value=value, headers=headers)
                   for key, headers, value in messages]
        self.producer.flush(timeout=self.ack_timeout)
        failed = next((f for f in futures if not f.succeeded()), None)
        if failed is not None:
            _log_publish_failure(start, len(messages), failed.exception)
            raise RelayStalled(f"broker did not acknowledge the batch after position {start}: "
                               f"{failed.exception or 'timed out'}")
        with self.store.transaction() as cursor:
            rows.flush(cursor)
            if not advance_position(cursor, RELAY_NAME, start, notifications[-1].id):
                raise RelayStalled("another relay moved the position; this batch will be re-sent by one of us")
        return len(notifications)

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


def producer_for(bootstrap: str) -> KafkaProducer:
    """An idempotent producer that waits for all in-sync replicas; ordering kept per partition."""
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, retries=5,
                         request_timeout_ms=10000, delivery_timeout_ms=20000, max_block_ms=10000)
