"""The reminders read model's query side: the reminders open as of any instant, and what is due for the
reminder process.

A reminder is open at T when it had been emitted by T and its item was still in that stage entry at T (it
entered by T and left after T, or has not left). The rows are found by their span class (`projections.tables.span_class`:
how long each was open): per class, only those emitted in the window before T in which one of that class can
still be open, so the cost follows the answer, not every reminder ever emitted. Items are shown by name and customer, opened from their
seals in one go (forgotten people read "(forgotten)"); a customer registered after T is not named yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from projections.ports import Store, UnsealAll
from projections.reminders.rows import DUE, ITEMS, REMINDERS, STAYING
from projections.tables import from_micros, in_force_at, micros, top_span_sql

_OPEN = (f"SELECT r.reminder_id, r.item_id, i.kind, e.pipeline, e.stage, r.threshold, r.due_at, r.emitted_at, "
         f"r.owner, e.entered_at, i.name, i.company, i.customer_id, c.company, c.name, c.registered_at "
         f"FROM {REMINDERS.name} r JOIN reminder_entries e ON e.item_id = r.item_id AND e.entry_version = r.entry_version "
         f"JOIN {ITEMS.name} i ON i.item_id = r.item_id "
         f"LEFT JOIN reminder_customers c ON c.customer_id = i.customer_id "
         f"WHERE e.entered_at <= ? AND e.left_at > ? AND r.left_at > ? AND ")


@dataclass(frozen=True)
class OpenReminder:
    reminder_id: UUID
    item_id: UUID
    kind: str
    item: str  # its name: a deal's title, a lead's name, a ticket's subject
    customer: str  # the customer's company (or name); a lead's own company
    pipeline: str
    stage: str
    threshold: str
    owner: str
    entered_at: datetime
    due_at: datetime
    emitted_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"reminder_id": str(self.reminder_id), "item_id": str(self.item_id), "kind": self.kind,
                "item": self.item, "customer": self.customer, "pipeline": self.pipeline, "stage": self.stage,
                "threshold": self.threshold, "owner": self.owner, "entered_at": self.entered_at.isoformat(),
                "due_at": self.due_at.isoformat(), "emitted_at": self.emitted_at.isoformat()}


@dataclass(frozen=True)
class DueThreshold:
    """A threshold the reminder process should remind of: due, not emitted, its entry not left (as projected)."""

    item_id: UUID
    entry_version: int
    threshold: str
    due_at: datetime


class ReminderQueries:
    def __init__(self, store: Store, unseal_all: UnsealAll) -> None:
        self.store, self.unseal_all = store, unseal_all

    def open_at(self, as_of: datetime, owner: str | None = None) -> list[OpenReminder]:
        """Reminders open at `as_of`, earliest due first (then by id), optionally of one owner: all of them, so
        that the routes' pages and totals are right however many there are (a cap of 10,000 made later pages
        silently empty: review 15)."""
        t = micros(as_of)
        found = self._open_rows(t, owner)
        texts = self.unseal_all([text for row in found for text in (row[10], _customer_seal(row, t))])
        return [OpenReminder(UUID(row[0]), UUID(row[1]), row[2], texts[2 * n], texts[2 * n + 1], row[3], row[4],
                             row[5], row[8], from_micros(row[9]), from_micros(row[6]), from_micros(row[7]))
                for n, row in enumerate(found)]

    def _open_rows(self, t: int, owner: str | None) -> list[Any]:
        """The open reminders' rows in two steps: their ids by span class from the reminders' own index, then
        the rows joined by key (in one statement, PostgreSQL estimated the span ranges high and scanned every
        entry to hash-join them: 321 ms p95 at 10 % of a history against 152 ms at 100 %)."""
        top = self.store.query(top_span_sql(REMINDERS.name), [])[0][0]
        spans, found_by = in_force_at("r.span", "r.emitted_at", t, top=top)
        sql, params = f"SELECT r.reminder_id FROM {REMINDERS.name} r WHERE r.left_at > ? AND {spans}", [t, *found_by]
        if owner is not None:
            sql, params = sql + " AND r.owner = ?", [*params, owner]
        ids = [reminder_id for (reminder_id,) in self.store.query(sql, params)]
        found = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            found += self.store.query(_OPEN + f"r.reminder_id IN ({', '.join('?' * len(chunk))})", [t, t, t, *chunk])
        return sorted(found, key=lambda row: (row[6], row[0]))

    def summary(self, as_of: datetime) -> list[dict[str, Any]]:
        return [reminder.to_dict() for reminder in self.open_at(as_of)]

    def due(self, now: datetime, limit: int = 1000, after: DueThreshold | None = None) -> list[DueThreshold]:
        """What is due by `now` and not reminded of yet, earliest first (the process's work list); `after`: the
        page after that one (keyset: due_at, item, entry, threshold)."""
        page, params = "", [micros(now), STAYING]
        if after is not None:
            page = " AND (d.due_at, d.item_id, d.entry_version, d.threshold) > (?, ?, ?, ?)"
            params += [micros(after.due_at), str(after.item_id), after.entry_version, after.threshold]
        rows = self.store.query(
            f"SELECT d.item_id, d.entry_version, d.threshold, d.due_at FROM {DUE.name} d "
            f"JOIN reminder_entries e ON e.item_id = d.item_id AND e.entry_version = d.entry_version "
            f"WHERE d.state = 'open' AND d.due_at <= ? AND e.left_at = ?{page} "
            "ORDER BY d.due_at, d.item_id, d.entry_version, d.threshold LIMIT ?", [*params, limit])
        return [DueThreshold(UUID(i), v, label, from_micros(at)) for i, v, label, at in rows]

    def next_due_at(self, after: datetime) -> datetime | None:
        """When the next open threshold falls due after `after` (None: nothing scheduled)."""
        found = self.store.query(f"SELECT MIN(due_at) FROM {DUE.name} WHERE state = 'open' AND due_at > ?",
                                 [micros(after)])
        return from_micros(found[0][0]) if found and found[0][0] is not None else None


def _customer_seal(row: Any, t: int) -> str:
    """The customer's company (else name) if registered by T; a lead's own company; "" otherwise."""
    if row[2] == "lead" or not row[12]:
        return row[11] or ""
    if row[15] is None or row[15] > t:
        return ""
    return row[13] or row[14] or ""
