"""`crm export`: the whole event log as JSON Lines, in log order, streamed (memory stays flat).

One event per line: `{"type": "crm.Deal.StageChanged", "subject": "<aggregate uuid>", "version": 3,
"recorded_at": "…", "data": {...}}`, `data` being the event's own fields as
`gateways.kafka.cloudevents.event_data` gives them (business time `occurred_at` included), `recorded_at`
the library's `timestamp`: when the event was recorded. `crm import` keeps it, so an entry recorded late
and back-dated in business time stays visible as such after a migration.
Times are ISO 8601 (UTC as `Z`), money and ids are strings, text is UTF-8. `services.history.importer` reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import IO, Any
from uuid import UUID

import orjson

from services.event_envelope import event_data, event_type
from services.application import CrmApplication
from services.history.event_lines import RECORDED

PROGRESS_EVERY = 5000


def _default(value: Any) -> Any:
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    raise TypeError(f"cannot export a {type(value).__name__}")


def history_line(event: Any) -> bytes:
    """One event as one line of the history file (newline included)."""
    record = {"type": event_type(event), "subject": str(event.originator_id), "version": event.originator_version,
              RECORDED: event.timestamp, "data": event_data(event)}
    return orjson.dumps(record, default=_default, option=orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE)


def export_history(app: CrmApplication, out: IO[bytes],
                   on_progress: Callable[[int, int], None] = lambda done, total: None) -> int:
    """Write every event of the log to `out`; returns how many were written."""
    total, count = app.event_count(), 0
    for count, (_, event) in enumerate(app.read_log(), 1):
        out.write(history_line(event))
        if count % PROGRESS_EVERY == 0:
            on_progress(count, total)
    on_progress(count, total)
    return count
