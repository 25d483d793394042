"""The customer timeline read model's query side: a customer's timeline (or every one) as of an instant.

A customer's timeline is its own entries and those of the leads that had converted into it by the instant,
in business-time order; the entries' sealed personal data is opened as they are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from projections.ports import Store, Unseal
from projections.tables import from_micros, micros
from projections.timeline.rows import one_line

END_OF_TIME = 2**63 - 1
# Equal instants: by when the log recorded the events, then subject and version (known on every path, so a
# rebuild, a replay and projectors fed partitions in any interleaving order a timeline alike).
ORDER = "ORDER BY e.occurred_at, e.recorded_at, e.subject_id, e.seq"


class UnknownCustomer(LookupError):
    """No customer with that id had been registered by the instant asked about."""


@dataclass(frozen=True)
class TimelineEntry:
    occurred_at: datetime
    kind: str
    actor: str
    summary: str
    subject_id: UUID

    def to_dict(self) -> dict[str, Any]:
        return {"occurred_at": self.occurred_at.isoformat(), "kind": self.kind, "actor": self.actor,
                "summary": self.summary, "subject_id": str(self.subject_id)}


@dataclass(frozen=True)
class Timeline:
    customer_id: UUID
    as_of: datetime | None
    total: int  # entries up to `as_of`, of which `entries` is the page from `offset`
    offset: int
    entries: list[TimelineEntry]

    def to_dict(self) -> dict[str, Any]:
        return {"customer_id": str(self.customer_id), "as_of": self.as_of.isoformat() if self.as_of else None,
                "total": self.total, "offset": self.offset, "entries": [e.to_dict() for e in self.entries]}


class TimelineQueries:
    """A customer's timeline as of an instant, from the timeline read model.

    Entries keep personal data sealed; it is opened here with the log's keys (`unseal`, e.g. the key store's
    `unseal_marks`), so a forgotten person's data reads "(forgotten)" however old the entry.
    """

    COLUMNS = "e.occurred_at, e.kind, e.actor, e.summary, e.subject_id"

    def __init__(self, store: Store, unseal: Unseal) -> None:
        self.store = store
        self.unseal = unseal

    def timeline(self, customer_id: UUID, as_of: datetime | None = None, limit: int = 100,
                 offset: int = 0) -> Timeline:
        """Entries ordered by business time, then by when recorded (`ORDER`); only those at or before `as_of`."""
        t = END_OF_TIME if as_of is None else micros(as_of)
        if not self.store.query("SELECT 1 FROM timeline_customers WHERE customer_id = ? AND registered_at <= ?",
                                [str(customer_id), t]):
            raise UnknownCustomer(f"no customer with id {customer_id}"
                                  + (f" as of {as_of.isoformat()}" if as_of else ""))
        owners = [str(customer_id), *(lead for (lead,) in self.store.query(
            "SELECT lead_id FROM timeline_leads WHERE customer_id = ? AND converted_at <= ?", [str(customer_id), t]))]
        scope = f"FROM timeline_entries e WHERE e.occurred_at <= ? AND e.owner_id IN ({', '.join('?' * len(owners))})"
        (total,) = self.store.query(f"SELECT COUNT(*) {scope}", [t, *owners])[0]
        rows = self.store.query(f"SELECT {self.COLUMNS} {scope} {ORDER} LIMIT ? OFFSET ?",
                                [t, *owners, limit, offset])
        return Timeline(customer_id, as_of, int(total), offset, [self._entry(row) for row in rows])

    def summary(self, as_of: datetime) -> dict[str, Any]:
        """Every customer's whole timeline as of `as_of`, JSON-able (one query for all of them)."""
        t = micros(as_of)
        timelines: dict[str, list[dict[str, Any]]] = {
            customer_id: [] for (customer_id,) in self.store.query(
                "SELECT customer_id FROM timeline_customers WHERE registered_at <= ? ORDER BY customer_id", [t])}
        for customer_id, *row in self.store.query(
            f"SELECT COALESCE(l.customer_id, e.owner_id), {self.COLUMNS} FROM timeline_entries e "
            "LEFT JOIN timeline_leads l ON l.lead_id = e.owner_id AND l.converted_at <= ? "
            f"WHERE e.occurred_at <= ? {ORDER}", [t, t]
        ):
            if customer_id in timelines:
                timelines[customer_id].append(self._entry(row).to_dict())
        return timelines

    def _entry(self, row: Any) -> TimelineEntry:
        at, kind, actor, summary, subject = row
        return TimelineEntry(from_micros(at), kind, actor, one_line(self.unseal(summary)), UUID(subject))
