"""The inbound consumer: touches and campaign responses sent by other systems become commands.

Topic `crm.inbound` carries JSON messages (see asyncapi.yaml). A message that cannot be understood
or is refused by the domain goes to `crm.inbound.dlq` with the reason in its headers, and the
consumer carries on. Offsets are committed only after a batch was handled or dead-lettered.

The DLQ keeps no personal data in clear: a dead letter keeps what an operator needs to see why it was
refused (type, source, ids, channel, direction, kind, times — each only when it has the expected form)
and replaces everything else, the touch's summary first, by its length. The DLQ's retention is
`DLQ_RETENTION_MS` (7 days), set when `crm inbound` creates the topic (`ensure_dlq_topic`).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata, TopicPartition
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from domain.base import Meta
from domain.errors import DomainError
from domain.vocabulary import RESPONSE_KINDS, TOUCH_CHANNELS, TOUCH_DIRECTIONS, UNKNOWN
from gateways.kafka.relay import close_in_background
from services.application import ConcurrencyConflict, CrmApplication, NotFound
from services.commands import LogTouch, RecordResponse
from services.healing import TRANSIENT_DATABASE_ERRORS, follow_until_stopped
from services.strict_json import DuplicateKey, loads_compact

INBOUND_TOPIC = "crm.inbound"
DLQ_TOPIC = "crm.inbound.dlq"
INBOUND_GROUP = "crm-inbound"
DLQ_ACK_SECONDS = 30
DLQ_RETENTION_MS = 7 * 24 * 3600 * 1000  # a week to look at a refusal and resend; then Kafka deletes it
log = logging.getLogger(__name__)
_ID = re.compile(r"[0-9a-fA-F-]{32,36}")
_TIME = re.compile(r"[0-9T:.+Z -]{10,40}")
_SOURCE = re.compile(r"[A-Za-z0-9._/-]{1,100}")
KEPT_IN_DLQ = {  # field → the form its value must have to be kept in a dead letter (else only its length)
    "type": frozenset({"touch", "campaign_response"}).__contains__,
    "source": _SOURCE.fullmatch, "occurred_at": _TIME.fullmatch,
    "customer_id": _ID.fullmatch, "campaign_id": _ID.fullmatch, "lead_id": _ID.fullmatch,
    "channel": frozenset({*TOUCH_CHANNELS, UNKNOWN}).__contains__, "direction": frozenset(TOUCH_DIRECTIONS).__contains__,
    "kind": frozenset(RESPONSE_KINDS).__contains__,
}


class InboundStalled(RuntimeError):
    """`--once` could not get any partition of the topic to read."""


class _Inbound(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    source: str = Field(min_length=1, max_length=100, description="The sending system, recorded as the actor.")
    occurred_at: AwareDatetime | None = None


class TouchMessage(_Inbound):
    type: Literal["touch"]
    customer_id: UUID
    channel: str = Field(default=UNKNOWN, description="A touch channel of the installation's vocabulary; "
                                                      "absent: unknown.")
    direction: str
    summary: str = Field(default="", max_length=2000)


class CampaignResponseMessage(_Inbound):
    type: Literal["campaign_response"]
    campaign_id: UUID
    kind: str
    customer_id: UUID | None = None
    lead_id: UUID | None = None
    variant: str = Field("", max_length=200)  # the key of the campaign's variant responded to ("": none)


InboundMessage = Annotated[TouchMessage | CampaignResponseMessage, Field(discriminator="type")]
_parse = TypeAdapter(InboundMessage)
TAGS = "'touch', 'campaign_response'"
FREE_TEXT = frozenset({"summary"})
_CODE = re.compile(r"[A-Za-z0-9_.:+-]{0,40}")  # ids, vocabulary, times: no spaces, no "@", no other script
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
        app.handle(command_of(message), meta)
    except (DomainError, NotFound, ConcurrencyConflict) as error:
        raise ValueError(f"refused: {error}") from None


def command_of(message: TouchMessage | CampaignResponseMessage) -> LogTouch | RecordResponse:
    """The command a message asks for (the message is validated by its own model, with its own sentences)."""
    if isinstance(message, TouchMessage):
        return LogTouch(message.customer_id, message.channel, message.direction, message.summary)
    return RecordResponse(message.campaign_id, message.kind, message.customer_id, message.lead_id, message.variant)


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
    """What was sent, when it is short and no free text (a summary may hold personal data: never echoed), and
    text only when it looks like a code ("fax"), not like a name or an address put in the wrong field."""
    if field in FREE_TEXT or not isinstance(value, str | int | float | bool | None) or len(repr(value)) > 60:
        return ""
    if isinstance(value, str) and not _CODE.fullmatch(value):
        return ""
    return f" (got {value!r})"


class InboundConsumer:
    def __init__(self, app: CrmApplication, consumer: KafkaConsumer, producer: KafkaProducer,
                 dlq_topic: str = DLQ_TOPIC, new_producer: Callable[[], KafkaProducer] | None = None,
                 ack_seconds: float = DLQ_ACK_SECONDS) -> None:
        """`new_producer` replaces the dead-letter producer after a failed send (see _dead_letter);
        `ack_seconds` bounds each wait on the broker (a dead letter's acknowledgement, an offset commit)."""
        self.app = app
        self.consumer = consumer
        self.producer: KafkaProducer | None = producer
        self.dlq_topic = dlq_topic
        self.new_producer = new_producer
        self.ack_seconds = ack_seconds
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
            if done:  # bounded: an unbounded commit hung ≈ 30 s of an outage before the retry loop saw it
                self.consumer.commit(done, timeout_ms=int(self.ack_seconds * 1000))
        return handled, dead

    def _handle(self, record: Any) -> bool:
        """Run the record's command (True) or dead-letter it (False); database faults propagate."""
        correlation = f"{record.topic}/{record.partition}/{record.offset}"
        try:
            handle(self.app, record.value, correlation)
            return True
        except ValueError as error:
            self._dead_letter(record, str(error))
            log.warning("inbound: refused %s, dead-lettered without its personal data: %s", correlation, error,
                        extra={"component": "inbound", "action": "refusal", "origin": correlation,
                               "reason": str(error)})  # a reason quotes no free text (see _got)
            return False

    def _rewind(self, batch: dict[TopicPartition, list[Any]], done: dict[TopicPartition, OffsetAndMetadata]) -> None:
        for partition, records in batch.items():
            offset = done[partition].offset if partition in done else records[0].offset
            if offset <= records[-1].offset:
                self.consumer.seek(partition, offset)

    def _dead_letter(self, record: Any, reason: str) -> None:
        """Send the record to the DLQ and wait for the broker's acknowledgement (refusals are rare; a dead
        letter that is not acknowledged must not let its offset be committed)."""
        origin = f"{record.topic}/{record.partition}/{record.offset}"
        headers = [*(getattr(record, "headers", None) or []),
                   ("dlq_reason", reason[:4000].encode()),
                   ("dlq_origin", origin.encode()),
                   ("dlq_time", datetime.now().astimezone().isoformat().encode())]
        if self.producer is None:  # renewed lazily: made during an outage, it would block ≈ 30 s to bootstrap
            assert self.new_producer is not None
            self.producer = self.new_producer()
        try:  # the personal data of a refused message is not kept (see without_personal_data)
            self.producer.send(self.dlq_topic, key=record.key, value=without_personal_data(record.value),
                               headers=headers).get(timeout=self.ack_seconds)
        except KafkaError:
            self._renew_producer()
            raise

    def _renew_producer(self) -> None:
        """The next dead letter gets a new producer (why: KafkaRelay._run_batch_renewing_the_producer), made
        when it is needed: made now, in the outage, it would block until its bootstrap gives up."""
        if self.new_producer is None or self.producer is None:
            return
        log.warning("replacing the dead-letter producer after a failed send")
        stale, self.producer = self.producer, None
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


def without_personal_data(value: bytes | None) -> bytes:
    """A refused message as the DLQ keeps it: the fields an operator debugs with, when they have their
    expected form; every other value (a summary, a mistyped field, a body that is not a JSON object)
    replaced by {"removed": <its length in characters>}."""
    try:
        message = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        message = None
    if not isinstance(message, dict):
        return orjson.dumps({"removed": len((value or b"").decode(errors="replace"))})
    return orjson.dumps({name: item if _kept(name, item) else {"removed": len(str(item))}
                         for name, item in message.items()})


def _kept(name: str, value: object) -> bool:
    form = KEPT_IN_DLQ.get(name)
    return value is None or (form is not None and isinstance(value, str) and bool(form(value)))


def ensure_dlq_topic(bootstrap: str, topic: str = DLQ_TOPIC, retention_ms: int = DLQ_RETENTION_MS) -> None:
    """Create the DLQ with its retention, or set the retention of one that exists (auto-created topics
    would keep the broker's default)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="crm-inbound-admin", request_timeout_ms=30_000)
    try:
        config = {"retention.ms": str(retention_ms)}
        try:
            admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1, topic_configs=config)])
        except TopicAlreadyExistsError:
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=config)])
        log.info("dead-letter topic %s keeps messages %d ms", topic, retention_ms)
    finally:
        admin.close()


def consumer_for(bootstrap: str, topic: str = INBOUND_TOPIC, group: str = INBOUND_GROUP) -> KafkaConsumer:
    return KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                         auto_offset_reset="earliest", max_poll_records=500)
