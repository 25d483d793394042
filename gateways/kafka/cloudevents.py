"""Domain events as CloudEvents 1.0 in Kafka's binary content mode: `ce_*` headers, JSON data (orjson)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from services.event_envelope import event_data, event_type

SPEC_VERSION = b"1.0"
SOURCE = "/crm"
CONTENT_TYPE = b"application/json"


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
