"""The segment changes read model's query side: announcements made by an instant, and the segment process's
work — customers whose tier at an instant, in the segments read model, is not the one last announced.

The work list reads the segments read model's tables (as `projections.segments.tier_members_sql` lets other
read models do): the interval holding the instant gives each customer's tier and since when; a forgotten
customer has none after it was forgotten (its timeline ends there), so one announced in a tier is due to leave
it at `forgotten_at`; likewise one whose marketing consent is withdrawn (`Customer.ConsentChanged`) leaves at the
withdrawal, and enters its tier again when consent is granted again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.segment_change_rules import NO_TIER, TierChange, due_change
from projections.ports import Store
from projections.segment_changes.rows import ANNOUNCED, CHANGES, CONSENT
from projections.segments.handlers import CUSTOMERS, INTERVALS
from projections.tables import from_micros, micros

# The customers in a tier at T other than the one last announced (none announced: ""), with since when (or since
# their marketing consent was granted again, if later), unless their marketing consent is withdrawn at T; and those
# announced in a tier but forgotten or with consent withdrawn by T, with the instant they left (the earlier of the
# two). Each with how many announcements of the customer were made (the next one's sequence: its id,
# `domain.segment_change_rules.change_id`).
_COUNT = f"(SELECT COUNT(*) FROM {CHANGES.name} s WHERE s.customer_id = {{0}}.customer_id)"
_WITHDRAWN = "k.withdrawn_at <= ? AND (k.granted_at IS NULL OR k.granted_at > ?)"  # at T
_LEAVING = (f"SELECT a.customer_id, c.forgotten_at AS left_at, a.tier FROM {ANNOUNCED.name} a "
            f"JOIN {CUSTOMERS.name} c ON c.customer_id = a.customer_id "
            f"WHERE a.tier <> '' AND c.forgotten_at IS NOT NULL AND c.forgotten_at <= ? "
            f"UNION ALL SELECT a.customer_id, k.withdrawn_at, a.tier FROM {ANNOUNCED.name} a "
            f"JOIN {CONSENT.name} k ON k.customer_id = a.customer_id WHERE a.tier <> '' AND {_WITHDRAWN}")
_DUE = (f"SELECT i.customer_id, i.tier, CASE WHEN k.granted_at > i.tier_since THEN k.granted_at ELSE i.tier_since "
        f"END, COALESCE(a.tier, ''), {_COUNT.format('i')} FROM {INTERVALS.name} i "
        f"LEFT JOIN {ANNOUNCED.name} a ON a.customer_id = i.customer_id "
        f"LEFT JOIN {CONSENT.name} k ON k.customer_id = i.customer_id "
        f"WHERE i.valid_from <= ? AND (i.valid_to IS NULL OR i.valid_to > ?) AND (a.tier IS NULL OR a.tier <> i.tier) "
        f"AND NOT (k.customer_id IS NOT NULL AND {_WITHDRAWN}) "
        f"UNION ALL SELECT l.customer_id, NULL, MIN(l.left_at), l.tier, {_COUNT.format('l')} FROM ({_LEAVING}) l "
        f"GROUP BY l.customer_id, l.tier ORDER BY 3, 1 LIMIT ?")


_COLUMNS = ", ".join(CHANGES.column_names)


@dataclass(frozen=True)
class Announcement:
    change_id: UUID
    customer_id: UUID
    old_tier: str
    new_tier: str
    changed_at: datetime
    announced_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ids and instants as text."""
        return {name: value if isinstance(value, str) else str(value) if isinstance(value, UUID) else value.isoformat()
                for name, value in vars(self).items()}


class SegmentChangeQueries:
    def __init__(self, store: Store) -> None:
        self.store = store

    def due(self, now: datetime, limit: int = 1000) -> list[TierChange]:
        """The changes to announce at `now`, earliest first (`domain.segment_change_rules.due_change`)."""
        t = micros(now)
        found = []
        for customer_id, tier, since, announced, made in self.store.query(_DUE, [t] * 7 + [limit]):
            customer = UUID(customer_id)
            current = None if tier is None else (tier, from_micros(since))
            left_at = None if tier is not None else from_micros(since)
            change = due_change(customer, announced, current, left_at, int(made))
            if change is not None:
                found.append(change)
        return found

    def next_change_after(self, after: datetime) -> datetime | None:
        """When the next tier change the segments read model knows of falls due after `after` (the clock alone
        brings it: an age limit passed, or a deal's effect that was recorded ahead); None: none is known."""
        found = self.store.query(f"SELECT MIN(valid_from) FROM {INTERVALS.name} WHERE valid_from > ? "
                                 "AND tier_since = valid_from", [micros(after)])
        return from_micros(found[0][0]) if found and found[0][0] is not None else None

    def announced(self, customer_id: UUID) -> str:
        """The tier last announced for the customer (NO_TIER: none, or it left every tier)."""
        found = self.store.query(f"SELECT tier FROM {ANNOUNCED.name} WHERE customer_id = ?", [str(customer_id)])
        return found[0][0] if found else NO_TIER

    def announcements(self, as_of: datetime, customer_id: UUID | None = None) -> list[Announcement]:
        """The announcements made by `as_of` (optionally of one customer), in the order they were made."""
        sql, params = f"SELECT {_COLUMNS} FROM {CHANGES.name} WHERE announced_at <= ?", [micros(as_of)]
        if customer_id is not None:
            sql, params = sql + " AND customer_id = ?", [*params, str(customer_id)]
        return [Announcement(UUID(change), UUID(customer), old, new, from_micros(changed), from_micros(announced))
                for change, customer, old, new, changed, announced in self.store.query(
                    sql + " ORDER BY announced_at, changed_at, customer_id", params)]

    def summary(self, as_of: datetime) -> list[dict[str, Any]]:
        return [announcement.to_dict() for announcement in self.announcements(as_of)]
