"""The AsyncAPI 3.0 document of the CRM's topics, generated from the event classes themselves.

`python -m gateways.kafka.asyncapi > gateways/kafka/asyncapi.json` refreshes the committed copy;
a test fails when the two differ, so the document cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.exchange_rates import ExchangeRate
from domain.lead import Lead
from domain.personal_data import PERSONAL_FIELDS
from domain.pipeline import Pipeline
from domain.reminder_rules import Reminder
from domain.segment_change_rules import SegmentChange
from domain.targets import OwnerTeam, Target
from domain.ticket import Ticket
from domain.vocabulary import Vocabulary
from gateways.kafka.inbound import DLQ_TOPIC, INBOUND_TOPIC, CampaignResponseMessage, TouchMessage
from gateways.kafka.relay import REMINDERS_TOPIC, SEGMENTS_TOPIC, TOPIC
from services.event_envelope import ENVELOPE_FIELDS

AGGREGATES = (Customer, Lead, Deal, Campaign, Ticket, Pipeline, Vocabulary, ExchangeRate, Reminder, Target, OwnerTeam,
              SegmentChange)
_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"}, int: {"type": "integer"}, float: {"type": "number"}, bool: {"type": "boolean"},
    datetime: {"type": "string", "format": "date-time"}, date: {"type": "string", "format": "date"},
    UUID: {"type": "string", "format": "uuid"}, Decimal: {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
}
CLOUDEVENT_HEADERS = {
    "type": "object",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time"],
    "properties": {
        "ce_specversion": {"const": "1.0"},
        "ce_id": {"type": "string", "description": "<aggregate id>:<version>; the same on every redelivery"},
        "ce_source": {"const": "/crm"},
        "ce_type": {"type": "string", "description": "crm.<Aggregate>.<Event>, e.g. crm.Deal.StageChanged"},
        "ce_subject": {"type": "string", "format": "uuid", "description": "the aggregate's id"},
        "ce_time": {"type": "string", "format": "date-time", "description": "business time (occurred_at)"},
        "ce_recordedtime": {"type": "string", "format": "date-time", "description": "when it was recorded"},
        "ce_sequence": {"type": "string", "description": "position in its shard's totally ordered log"},
        "ce_aggregateversion": {"type": "string"},
        "ce_shard": {"type": "string", "description": "the shard whose log holds the event (0: the default)"},
        "crm_topic": {"type": "string", "description": "the stored event's topic (for the CRM's own projectors)"},
        "crm_state": {"type": "string", "contentMediaType": "application/json",
                      "description": "the stored event's state, personal fields sealed as in the log (for the "
                                     "CRM's own projectors, which rebuild the event from it)"},
        "content-type": {"const": "application/json"},
    },
}


def _schema(hint: Any) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return {"oneOf": [_schema(options[0]), {"type": "null"}]}
    if origin in (list, set, tuple):
        item = typing.get_args(hint)[0] if typing.get_args(hint) else str
        return {"type": "array", "items": _schema(item)}
    if origin is dict or hint is dict:
        values = typing.get_args(hint)[1] if typing.get_args(hint) else str
        return {"type": "object", "additionalProperties": {"type": "string"} if values is str else {}}
    return dict(_SCALARS[hint])


SEALED = {"$ref": "#/components/schemas/SealedPersonalData"}
SEALED_SCHEMA = {
    "type": "string", "pattern": r"^(pii:v1:[0-9a-f-]{36}:[A-Za-z0-9_=-]+)?$", "x-personal-data": True,
    "description": "Personal data, sealed: 'pii:v1:<record id>:<base64url(nonce[12] || AES-256-GCM ciphertext "
                   "and tag)>', the UTF-8 text encrypted with the key of that record (a customer, lead, deal or "
                   "ticket; additional data: the record id), bound to the person it is about; '' when empty. "
                   "Authorised services open it with POST /personal-data/open (role subscriber) while the person "
                   "is not forgotten; afterwards it opens to '(forgotten)', here and in every copy. Do not store "
                   "the opened text: keep the seal and open it when needed.",
}
DLQ_DESCRIPTION = (
    "Refused inbound messages, with headers dlq_reason, dlq_origin (topic/partition/offset) and dlq_time. "
    "Personal fields (a touch's summary, and anything unparsable) are replaced by {\"removed\": <characters>} "
    "before dead-lettering; ids, source, type, channel, direction, kind and times are kept for debugging. "
    "Retention: 7 days (retention.ms set when `crm inbound` creates the topic).")

REMINDERS_DESCRIPTION = (
    "Automatic reminders for mail, IM and task tools: an item (deal, lead, ticket; item_id, item_kind) has stayed "
    "in a stage (pipeline, stage, since entered_at) for a threshold ('3d': the stage's remind_after_days; "
    "'sla:response:0.75', 'sla:resolution:1': share of a ticket's service-level target), due at due_at; owner "
    "names whom to remind ('' when the item has none). One reminder per (item, stage entry, threshold) in the log "
    "(its id derives from them): the same CloudEvent as on crm.events (ce_id <reminder id>:1, the same on every "
    "redelivery), keyed by the item id, in the item's home partition (64). Names are not carried: "
    "GET /reminders shows them (items by name and customer).")
SEGMENTS_DESCRIPTION = (
    "A customer's value tier changed (high_value, potential, ordinary: RFM tiers by fixed thresholds), for marketing "
    "tools to send each segment what suits it: customer_id, old_tier (the tier announced before; '' before the "
    "first), new_tier ('' once the customer is forgotten: stop addressing them) and changed_at, the business instant "
    "of the change (also when it came by the mere ageing of purchases, exact to the microsecond). Each customer's "
    "changes form one chain (each old_tier is the previous new_tier); a tier entered and left while `crm segments "
    "run` was down is not announced. Exactly once in the log per (customer, changed_at, old_tier, new_tier) (the "
    "event's id derives from them): the same CloudEvent as on crm.events (ce_id <change id>:1, the same on every "
    "redelivery: deduplicate by it), keyed by the customer id, in the customer's home partition (64). No personal "
    "data: no name or contact is carried, and forgetting the customer destroys the keys of every seal that ties "
    "the id to a person.")


def event_payload(event_class: type) -> dict[str, Any]:
    hints = typing.get_type_hints(event_class)
    fields = [f.name for f in dataclasses.fields(event_class) if f.name not in ENVELOPE_FIELDS]
    personal = PERSONAL_FIELDS.get(event_class, ())
    return {"type": "object", "required": fields,
            "properties": {name: dict(SEALED) if name in personal else _schema(hints[name]) for name in fields}}


def event_classes() -> list[type]:
    return [value for aggregate in AGGREGATES for name, value in vars(aggregate).items()
            if isinstance(value, type) and issubclass(value, aggregate.Event) and name not in ("Event", "Created")]


def document() -> dict[str, Any]:
    messages = {f"{cls.__qualname__}": {
        "name": f"crm.{cls.__qualname__}", "title": cls.__qualname__, "contentType": "application/json",
        "headers": CLOUDEVENT_HEADERS, "payload": event_payload(cls),
    } for cls in event_classes()}
    inbound = {model.__name__: {"name": model.__name__, "contentType": "application/json",
                                "payload": model.model_json_schema()} for model in (TouchMessage, CampaignResponseMessage)}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Event-sourced CRM", "version": "1.0.0",
                 "description": "Every CRM event, published at least once in log order per customer: topic "
                                "crm.events has 64 partitions, one per home partition, and an event goes to its "
                                "record's (a deal's or ticket's: its customer's); reference data (pipelines, "
                                "vocabularies, exchange rates, campaigns) goes to every partition. Key = the "
                                "customer the event is about, else the aggregate id; deduplicate by ce_id. "
                                "Personal data is sealed per person (SealedPersonalData): forgetting a customer "
                                "destroys the keys, so every copy of their data becomes unreadable."},
        "channels": {
            "events": {"address": TOPIC, "messages": {k: {"$ref": f"#/components/messages/{k}"} for k in messages}},
            "reminders": {"address": REMINDERS_TOPIC, "description": REMINDERS_DESCRIPTION,
                          "messages": {"Reminder.Emitted": {"$ref": "#/components/messages/Reminder.Emitted"}}},
            "segments": {"address": SEGMENTS_TOPIC, "description": SEGMENTS_DESCRIPTION,
                         "messages": {"SegmentChange.Recorded": {
                             "$ref": "#/components/messages/SegmentChange.Recorded"}}},
            "inbound": {"address": INBOUND_TOPIC, "messages": {k: {"$ref": f"#/components/messages/{k}"}
                                                               for k in inbound}},
            "inboundDlq": {"address": DLQ_TOPIC, "description": DLQ_DESCRIPTION,
                           "messages": {k: {"$ref": f"#/components/messages/{k}"} for k in inbound}},
        },
        "operations": {
            "publishEvents": {"action": "send", "channel": {"$ref": "#/channels/events"}},
            "publishReminders": {"action": "send", "channel": {"$ref": "#/channels/reminders"}},
            "publishSegmentChanges": {"action": "send", "channel": {"$ref": "#/channels/segments"}},
            "receiveInbound": {"action": "receive", "channel": {"$ref": "#/channels/inbound"}},
            "sendDeadLetters": {"action": "send", "channel": {"$ref": "#/channels/inboundDlq"}},
        },
        "components": {"messages": {**messages, **inbound}, "schemas": {"SealedPersonalData": SEALED_SCHEMA}},
    }


def render() -> str:
    return orjson.dumps(document(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
