"""The segment changes read model's write side: each `SegmentChange.Recorded` is kept, and becomes its
customer's last announced tier (changes of one customer are recorded in turn by one process, so the last
recorded is the last announced)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.segment_change_rules import SegmentChange
from projections.read_model import ReadModel, Rows
from projections.segment_changes.rows import ANNOUNCED, CHANGES, TABLES, AnnouncedRow, ChangeRow
from projections.tables import micros


class SegmentChangesReadModel(ReadModel):
    name = "segment_changes"
    tables = TABLES

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return {SegmentChange.Recorded: _recorded}


def _recorded(event: SegmentChange.Recorded, rows: Rows) -> None:
    change_id, customer_id, changed_at = str(event.originator_id), str(event.customer_id), micros(event.changed_at)
    rows.put(CHANGES, ChangeRow(change_id, customer_id, event.old_tier, event.new_tier, changed_at,
                                micros(event.occurred_at)))
    rows.put(ANNOUNCED, AnnouncedRow(customer_id, event.new_tier, changed_at, change_id))
