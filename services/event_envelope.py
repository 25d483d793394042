"""An event as other systems see it: its type name and its own fields, without the log's envelope.

One definition for every way events leave the log — Kafka CloudEvents (gateways/kafka), `crm export`
and the AsyncAPI document — so that they name and shape events alike.
"""

from __future__ import annotations

import dataclasses
from typing import Any

ENVELOPE_FIELDS = ("originator_id", "originator_version", "timestamp", "originator_topic")


def event_type(event: Any) -> str:
    """`crm.Deal.StageChanged` for `Deal.StageChanged`."""
    return f"crm.{type(event).__qualname__}"


def event_data(event: Any) -> dict[str, Any]:
    """The event's own fields (what happened), without the envelope the headers already carry."""
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.name not in ENVELOPE_FIELDS}
