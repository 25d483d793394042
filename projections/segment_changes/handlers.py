"""The segment changes read model's write side: each `SegmentChange.Recorded` is kept, and becomes its
customer's last announced tier (changes of one customer are recorded in turn by one process, so the last
recorded is the last announced); a customer's marketing consent, once withdrawn (`Customer.ConsentChanged`), is
kept as when it was withdrawn and when granted again, for the work list (nothing is announced while withdrawn)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.customer import Customer
from domain.segment_change_rules import SegmentChange
from projections.read_model import ReadModel, Rows
from projections.segment_changes.rows import ANNOUNCED, CHANGES, CONSENT, TABLES, AnnouncedRow, ChangeRow, ConsentRow
from projections.tables import micros


class SegmentChangesReadModel(ReadModel):
    name = "segment_changes"
    tables = TABLES

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return {SegmentChange.Recorded: _recorded, Customer.ConsentChanged: _consent_changed}


def _recorded(event: SegmentChange.Recorded, rows: Rows) -> None:
    change_id, customer_id, changed_at = str(event.originator_id), str(event.customer_id), micros(event.changed_at)
    rows.put(CHANGES, ChangeRow(change_id, customer_id, event.old_tier, event.new_tier, changed_at,
                                micros(event.occurred_at)))
    rows.put(ANNOUNCED, AnnouncedRow(customer_id, event.new_tier, changed_at, change_id))


def _consent_changed(event: Customer.ConsentChanged, rows: Rows) -> None:
    """Withdrawn: from now on (a later withdrawal restarts it); granted again: until then. A grant never withdrawn
    before changes nothing (consent is the default)."""
    customer_id, instant = str(event.originator_id), micros(event.occurred_at)
    if not event.marketing:
        rows.put(CONSENT, ConsentRow(customer_id, instant, None))
    elif (held := rows.get(CONSENT, customer_id)) is not None and held.granted_at is None:
        rows.put(CONSENT, held._replace(granted_at=instant))
