"""Domain events as CloudEvents 1.0 in Kafka's binary content mode: `ce_*` headers, JSON data (orjson)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

SPEC_VERSION = b"1.0"
SOURCE = "/crm"
CONTENT_TYPE = b"application/json"
ENVELOPE_FIELDS = ("originator_id", "originator_version", "timestamp", "originator_topic")


def event_type(event: Any) -> str:
    """`crm.Deal.StageChanged` for `Deal.StageChanged`."""
    return f"crm.{type(event).__qualname__}"


def event_id(event: Any) -> str:
    """Stable across redeliveries, unique in the log: the aggregate id and the event's version."""
    return f"{event.originator_id}:{event.originator_version}"


def _default(value: Any) -> Any:
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def event_data(event: Any) -> dict[str, Any]:
    """The event's own fields (what happened), without the envelope the headers already carry."""
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.name not in ENVELOPE_FIELDS}


def encode(event: Any, sequence: int) -> tuple[list[tuple[str, bytes]], bytes]:
    """Headers and value of the Kafka message for an event at log position `sequence`."""
    headers = [
        ("ce_specversion", SPEC_VERSION),
        ("ce_id", event_id(event).encode()),
        ("ce_source", SOURCE.encode()),
        ("ce_type", event_type(event).encode()),
        ("ce_subject", str(event.originator_id).encode()),
        ("ce_time", event.occurred_at.isoformat().encode()),
        ("ce_recordedtime", event.timestamp.isoformat().encode()),
        ("ce_sequence", str(sequence).encode()),
        ("ce_aggregateversion", str(event.originator_version).encode()),
        ("content-type", CONTENT_TYPE),
    ]
    return headers, orjson.dumps(event_data(event), default=_default, option=orjson.OPT_UTC_Z)


def decode_headers(headers: list[tuple[str, bytes]]) -> dict[str, str]:
    return {name: value.decode() for name, value in headers}
