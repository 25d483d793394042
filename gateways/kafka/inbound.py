"""The inbound consumer: touches and campaign responses sent by other systems become commands.

Topic `crm.inbound` carries JSON messages (see asyncapi.yaml). A message that cannot be understood
or is refused by the domain goes to `crm.inbound.dlq` with the reason in its headers, and the
consumer carries on. Offsets are committed only after a batch was handled or dead-lettered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from domain.base import Meta
from domain.errors import DomainError
from gateways.kafka.relay import close_in_background
from services.application import ConcurrencyConflict, CrmApplication, NotFound
from services.healing import TRANSIENT_DATABASE_ERRORS, follow_until_stopped

INBOUND_TOPIC = "crm.inbound"
DLQ_TOPIC = "crm.inbound.dlq"
INBOUND_GROUP = "crm-inbound"
DLQ_ACK_SECONDS = 30
log = logging.getLogger(__name__)


class InboundStalled(RuntimeError):
    """`--once` could not get any partition of the topic to read."""


class _Inbound(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    source: str = Field(min_length=1, max_length=100, description="The sending system, recorded as the actor.")
    occurred_at: AwareDatetime | None = None


class TouchMessage(_Inbound):
    type: Literal["touch"]
    customer_id: UUID
    channel: str
    direction: str
    summary: str = Field(default="", max_length=2000)


class CampaignResponseMessage(_Inbound):
    type: Literal["campaign_response"]
    campaign_id: UUID
    kind: str
    customer_id: UUID | None = None
    lead_id: UUID | None = None


InboundMessage = Annotated[TouchMessage | CampaignResponseMessage, Field(discriminator="type")]
_parse = TypeAdapter(InboundMessage)


def _meta(message: _Inbound, correlation_id: str) -> Meta:
    if message.occurred_at is None:
        return Meta.now(message.source, correlation_id)
    return Meta(occurred_at=message.occurred_at, actor=message.source, correlation_id=correlation_id)


def handle(app: CrmApplication, value: bytes, correlation_id: str) -> None:
    """Parse one message and run its command; raises ValueError (with the reason) if it is refused."""
    try:
        message = _parse.validate_python(orjson.loads(value))
    except orjson.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error}") from None
    except ValidationError as error:
        raise ValueError(f"invalid message: {error.errors(include_url=False)}") from None
    meta = _meta(message, correlation_id)
    try:
        if isinstance(message, TouchMessage):
            app.log_touch(message.customer_id, message.channel, message.direction, message.summary, meta)
        else:
            app.record_response(message.campaign_id, message.kind, meta, customer_id=message.customer_id,
                                lead_id=message.lead_id)
    except (DomainError, NotFound, ConcurrencyConflict) as error:
        raise ValueError(f"refused: {error}") from None


class InboundConsumer:
    def __init__(self, app: CrmApplication, consumer: KafkaConsumer, producer: KafkaProducer,
                 dlq_topic: str = DLQ_TOPIC, new_producer: Callable[[], KafkaProducer] | None = None) -> None:
        """`new_producer` replaces the dead-letter producer after a failed send (see _dead_letter)."""
        self.app = app
        self.consumer = consumer
        self.producer = producer
        self.dlq_topic = dlq_topic
        self.new_producer = new_producer
        self.handled = self.dead = 0

    def poll_once(self, timeout_ms: int = 500) -> tuple[int, int]:
        """Handle one poll's messages; returns (commands run, messages dead-lettered).

        A message counts as done once its command is saved or its dead letter acknowledged. If the database
        or the broker fails midway, what is done is committed, each partition is rewound to its first
        message not done, and the error is raised: the next poll (after a pause) starts there, so nothing is
        skipped, and nothing done is redone unless the commit itself failed.
        """
        batch = self.consumer.poll(timeout_ms=timeout_ms)
        done: dict[TopicPartition, OffsetAndMetadata] = {}
        handled = dead = 0
        try:
            for partition, records in batch.items():
                for record in records:
                    if self._handle(record):
                        handled += 1
                    else:
                        dead += 1
                    done[partition] = OffsetAndMetadata(record.offset + 1, "", -1)
        except BaseException:
            self._rewind(batch, done)
            raise
        finally:
            self.handled, self.dead = self.handled + handled, self.dead + dead
            if done:
                self.consumer.commit(done)
        return handled, dead

    def _handle(self, record: Any) -> bool:
        """Run the record's command (True) or dead-letter it (False); database faults propagate."""
        correlation = f"{record.topic}/{record.partition}/{record.offset}"
        try:
            handle(self.app, record.value, correlation)
            return True
        except ValueError as error:
            self._dead_letter(record, str(error))
            log.warning("dead-lettered %s (the reason is in the dead letter's headers)", correlation)
            return False

    def _rewind(self, batch: dict[TopicPartition, list[Any]], done: dict[TopicPartition, OffsetAndMetadata]) -> None:
        for partition, records in batch.items():
            offset = done[partition].offset if partition in done else records[0].offset
            if offset <= records[-1].offset:
                self.consumer.seek(partition, offset)

    def _dead_letter(self, record: Any, reason: str) -> None:
        """Send the record to the DLQ and wait for the broker's acknowledgement (refusals are rare; a dead
        letter that is not acknowledged must not let its offset be committed)."""
        headers = [*(getattr(record, "headers", None) or []),
                   ("dlq_reason", reason[:4000].encode()),
                   ("dlq_origin", f"{record.topic}/{record.partition}/{record.offset}".encode()),
                   ("dlq_time", datetime.now().astimezone().isoformat().encode())]
        try:
            self.producer.send(self.dlq_topic, key=record.key, value=record.value, headers=headers).get(
                timeout=DLQ_ACK_SECONDS)
        except KafkaError:
            self._renew_producer()
            raise

    def _renew_producer(self) -> None:
        """The next attempt gets a new producer (why: KafkaRelay._run_batch_renewing_the_producer)."""
        if self.new_producer is None:
            return
        log.warning("replacing the dead-letter producer after a failed send")
        stale, self.producer = self.producer, self.new_producer()
        close_in_background(stale)

    def run(self, stop: threading.Event) -> None:
        """Handle messages until `stop` is set, riding out database and broker outages."""
        follow_until_stopped("inbound", lambda: sum(self.poll_once()), stop, 0,
                             (KafkaError, *TRANSIENT_DATABASE_ERRORS))

    def drain(self, stop: threading.Event, join_seconds: float = 60) -> None:
        """Handle every message the topic holds now (in this consumer's partitions), then return; raises
        InboundStalled if no partition is assigned within `join_seconds` (another consumer holds them all)."""
        join_deadline = time.monotonic() + join_seconds

        def step() -> int:
            self.poll_once()
            assigned = self.consumer.assignment()
            if not assigned:  # the group hands partitions out during the first polls
                if time.monotonic() > join_deadline:
                    raise InboundStalled(f"no partition of the topic was assigned within {join_seconds:g} s")
                return 1
            ends = self.consumer.end_offsets(list(assigned))
            if all(self.consumer.position(partition) >= ends[partition] for partition in assigned):
                stop.set()
            return 1

        follow_until_stopped("inbound --once", step, stop, 0, (KafkaError, *TRANSIENT_DATABASE_ERRORS))


def consumer_for(bootstrap: str, topic: str = INBOUND_TOPIC, group: str = INBOUND_GROUP) -> KafkaConsumer:
    return KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                         auto_offset_reset="earliest", max_poll_records=500)
