"""The inbound consumer: touches and campaign responses sent by other systems become commands.

Topic `crm.inbound` carries JSON messages (see asyncapi.yaml). A message that cannot be understood
or is refused by the domain goes to `crm.inbound.dlq` with the reason in its headers, and the
consumer carries on. Offsets are committed only after a batch was handled or dead-lettered.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import orjson
from kafka import KafkaConsumer, KafkaProducer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from domain.base import Meta
from domain.errors import DomainError
from services.application import ConcurrencyConflict, CrmApplication, NotFound

INBOUND_TOPIC = "crm.inbound"
DLQ_TOPIC = "crm.inbound.dlq"


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
                 dlq_topic: str = DLQ_TOPIC) -> None:
        self.app = app
        self.consumer = consumer
        self.producer = producer
        self.dlq_topic = dlq_topic

    def poll_once(self, timeout_ms: int = 500) -> tuple[int, int]:
        """Handle one poll's messages; returns (commands run, messages dead-lettered)."""
        handled = dead = 0
        for records in self.consumer.poll(timeout_ms=timeout_ms).values():
            for record in records:
                correlation = f"{record.topic}/{record.partition}/{record.offset}"
                try:
                    handle(self.app, record.value, correlation)
                    handled += 1
                except ValueError as error:
                    self._dead_letter(record, str(error))
                    dead += 1
        if handled or dead:
            self.producer.flush(timeout=30)
            self.consumer.commit()
        return handled, dead

    def _dead_letter(self, record: object, reason: str) -> None:
        headers = [*(getattr(record, "headers", None) or []),
                   ("dlq_reason", reason[:4000].encode()),
                   ("dlq_origin", f"{record.topic}/{record.partition}/{record.offset}".encode()),  # type: ignore[attr-defined]
                   ("dlq_time", datetime.now().astimezone().isoformat().encode())]
        self.producer.send(self.dlq_topic, key=record.key, value=record.value, headers=headers)  # type: ignore[attr-defined]

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.poll_once()


def consumer_for(bootstrap: str, topic: str = INBOUND_TOPIC, group: str = "crm-inbound") -> KafkaConsumer:
    return KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                         auto_offset_reset="earliest", max_poll_records=500)
