"""The inbound consumer: touches and campaign responses sent by other systems become commands.

Topic `crm.inbound` carries JSON messages (see asyncapi.yaml). A message that cannot be understood
or is refused by the domain goes to `crm.inbound.dlq` with the reason in its headers, and the
consumer carries on. Offsets are committed only after a batch was handled or dead-lettered.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import orjson
from kafka import KafkaConsumer, KafkaProducer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from domain.base import Meta
from domain.errors import DomainError
from services.application import ConcurrencyConflict, CrmApplication, NotFound
from services.strict_json import DuplicateKey, loads_compact

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
TAGS = "'touch', 'campaign_response'"
FREE_TEXT = frozenset({"summary"})
_SHOULD = re.compile(r"^(Input|String|Value) should")


def _meta(message: _Inbound, correlation_id: str) -> Meta:
    if message.occurred_at is None:
        return Meta.now(message.source, correlation_id)
    return Meta(occurred_at=message.occurred_at, actor=message.source, correlation_id=correlation_id)


def handle(app: CrmApplication, value: bytes, correlation_id: str) -> None:
    """Parse one message and run its command; raises ValueError (with the reason, a sentence) if it is refused."""
    message = parse(value)
    try:
        meta = _meta(message, correlation_id)  # the domain bounds business time
        if isinstance(message, TouchMessage):
            app.log_touch(message.customer_id, message.channel, message.direction, message.summary, meta)
        else:
            app.record_response(message.campaign_id, message.kind, meta, customer_id=message.customer_id,
                                lead_id=message.lead_id)
    except (DomainError, NotFound, ConcurrencyConflict) as error:
        raise ValueError(f"refused: {error}") from None


def parse(value: bytes) -> TouchMessage | CampaignResponseMessage:
    """The message `value` holds; ValueError with a readable reason (no Python repr) if it holds none."""
    try:
        return _parse.validate_python(loads_compact(value))
    except orjson.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error}") from None
    except DuplicateKey as error:
        raise ValueError(f"not accepted JSON: {error}") from None
    except ValidationError as error:
        raise ValueError(f"invalid message: {'; '.join(_sentence(issue) for issue in error.errors())}") from None


def _sentence(issue: ErrorDetails) -> str:
    """One validation issue as a sentence naming the field, e.g. "the field 'customer_id' is missing"."""
    kind, ctx = issue["type"], issue.get("ctx", {})
    if kind == "union_tag_not_found":
        return f"the field 'type' is missing; it must be one of {TAGS}"
    if kind == "union_tag_invalid":
        return f"the field 'type' must be one of {TAGS} (got {ctx['tag']!r})"
    if len(issue["loc"]) < 2:  # nothing but the message's type: the message as a whole is wrong
        return "the message must be a JSON object"
    tag, field = issue["loc"][0], ".".join(str(part) for part in issue["loc"][1:])
    if kind == "missing":
        return f"the field {field!r} is missing"
    if kind == "extra_forbidden":
        return f"the field {field!r} is not part of a {tag} message"
    rule = _SHOULD.sub("must", issue["msg"], count=1)
    return f"the field {field!r} {rule[0].lower()}{rule[1:]}{_got(field, issue['input'])}"


def _got(field: str, value: object) -> str:
    """What was sent, when it is short and no free text (a summary may hold personal data: never echoed)."""
    if field in FREE_TEXT or not isinstance(value, str | int | float | bool | None) or len(repr(value)) > 60:
        return ""
    return f" (got {value!r})"


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
