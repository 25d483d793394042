"""The query side of the customer segments read model: a customer's segment, a tier's members, counts per
tier, tier histories and movements, as of any instant, from the intervals `projections.segments.handlers`
wrote (one indexed range query per instant); the rules are `domain.segmentation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import orjson

from domain.exchange_rates import add_sums
from domain.properties import require_name
from domain.segmentation import TIERS, preferred_channel
from domain.vocabulary import UNKNOWN
from projections.ports import Store
from projections.segments.handlers import PROPERTIES
from projections.segments.rows import IntervalRow, instant
from projections.segments.tier_tallies import tallied_sums
from projections.tables import from_micros, micros
from projections.versioned_properties import join_params, value_as_of_sql

CHUNK = 400
MOVEMENT_DAYS = 90  # the summary's movements look back this far
_COVERING = "valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"  # the interval holding an instant
_COVERING_I = "i.valid_from <= ? AND (i.valid_to IS NULL OR i.valid_to > ?)"  # the same, intervals called `i`


def tier_members_sql(tier: str, as_of: datetime) -> tuple[str, list[Any]]:
    """SQL selecting the ids of the customers in `tier` at `as_of`, and its parameters.

    For other read models, e.g. `... WHERE d.customer_id IN (<sql>)` with the parameters spliced in.
    """
    t = micros(as_of)
    return f"SELECT customer_id FROM segments_intervals WHERE tier = ? AND {_COVERING}", [tier, t, t]


@dataclass(frozen=True)
class CustomerSegment:
    """One customer's scores, tier and preferences as of an instant."""

    customer_id: UUID
    as_of: datetime
    tier: str
    tier_since: datetime
    recency: int
    frequency: int
    monetary: int
    monetary_cents: int  # CNY won in the 365 days up to `as_of`
    open_deals: int
    last_purchase_at: datetime | None
    preferred_channel: str | None  # most frequent touch channel, else the acquisition channel
    preferred_pipeline: str | None  # the pipeline of most purchases
    unconverted: dict[str, int] = field(default_factory=dict)  # currency → cents won in the window, no rate

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["customer_id"] = str(self.customer_id)
        for name in ("as_of", "tier_since", "last_purchase_at"):
            result[name] = result[name] and result[name].isoformat()
        return result


@dataclass(frozen=True)
class TierCount:
    tier: str
    customers: int
    value_cents: int  # CNY their purchases of the last 365 days add up to
    average_recency: float | None
    average_frequency: float | None
    average_monetary: float | None
    unconverted: dict[str, int] = field(default_factory=dict)  # currency → cents its members won, no rate into CNY


@dataclass(frozen=True)
class Membership:
    """A stay in a tier: `[entered_at, left_at)`, left_at None while it lasts."""

    tier: str
    entered_at: datetime
    left_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"tier": self.tier, "entered_at": self.entered_at.isoformat(),
                "left_at": self.left_at and self.left_at.isoformat()}


@dataclass(frozen=True)
class Movement:
    """How many customers were in `from_tier` at one instant and in `to_tier` at another (None: in none)."""

    from_tier: str | None
    to_tier: str | None
    customers: int


_COLUMNS = ", ".join(IntervalRow._fields)
# Per (tier at the start, tier at the end) that differ, the customers: those in a tier at the end, with the one
# they were in at the start (NULL: none), and those in a tier at the start and in none at the end. Parameters:
# start twice (the join), end twice; start twice, end twice (NOT EXISTS).
_MOVEMENTS = (
    "SELECT b.tier, a.tier, COUNT(*) FROM segments_intervals a LEFT JOIN segments_intervals b "
    "ON b.customer_id = a.customer_id AND b.valid_from <= ? AND (b.valid_to IS NULL OR b.valid_to > ?) "
    "WHERE a.valid_from <= ? AND (a.valid_to IS NULL OR a.valid_to > ?) AND (b.tier IS NULL OR b.tier <> a.tier) "
    "GROUP BY b.tier, a.tier "
    "UNION ALL SELECT b.tier, NULL, COUNT(*) FROM segments_intervals b "
    "WHERE b.valid_from <= ? AND (b.valid_to IS NULL OR b.valid_to > ?) AND NOT EXISTS (SELECT 1 FROM "
    "segments_intervals a WHERE a.customer_id = b.customer_id AND a.valid_from <= ? AND (a.valid_to IS NULL OR "
    "a.valid_to > ?)) GROUP BY b.tier")


class SegmentQueries:
    """Answers segment questions as of any instant from the read model's tables."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def segment_of(self, customer_id: UUID, as_of: datetime) -> CustomerSegment | None:
        """The customer's segment at `as_of`; None if it was not (or no longer) a customer then."""
        found = self._segments(as_of, " AND customer_id = ?", (str(customer_id),))
        return found[0] if found else None

    def members(self, tier: str, as_of: datetime, limit: int = 50, offset: int = 0) -> list[CustomerSegment]:
        """Customers in `tier` at `as_of`, most CNY won in the last 365 days first."""
        return self._segments(as_of, " AND tier = ?", (tier,), limit, offset)

    def tier_counts(self, as_of: datetime, where: Filters = (), scanned: bool = False) -> list[TierCount]:
        """Per tier, in TIERS order: customers, their value, average R, F and M, and what they won in a
        currency without a rate into CNY then (not in the value: listed apart, never dropped); only the
        customers with each (dimension, value) of `where` then. Without `where`, from the pre-summed tallies
        (`tier_tallies`), whatever the length of the history; the scan of the intervals at the instant
        (`grouped_tier_counts`, or `scanned`) is the reference they are held equal to
        (tests/support/equivalence.py)."""
        if not where and not scanned:
            with self.store.snapshot():  # tallies and T's day's intervals of one state of the read model
                return _tier_counts(*tallied_sums(self.store, micros(as_of)))
        return self.grouped_tier_counts(as_of, None, where).get(None) or _tier_counts({}, {})

    def grouped_tier_counts(self, as_of: datetime, by: str | None, where: Filters = ()) -> dict[str | None,
                                                                                               list[TierCount]]:
        """`tier_counts` per value of `by` (region, industry, channel or a customer property, as of `as_of`;
        `unknown` where a customer has none), values in order; `by` None: one group, None. Two queries in all."""
        scope = _Scope(micros(as_of), by, where)
        found: dict[str | None, dict[str, list[int]]] = {}
        for key, tier, *sums in self.store.query(
                f"SELECT {scope.key}, i.tier, COUNT(*), SUM(i.monetary_cents), SUM(i.recency), SUM(i.frequency), "
                f"SUM(i.monetary) FROM {scope.source} GROUP BY {scope.group}", scope.params):
            found.setdefault(key, {})[tier] = [int(n) for n in sums]
        unconverted: dict[str | None, dict[str, dict[str, int]]] = {}  # few rows: purchases without a rate
        for key, tier, amounts in self.store.query(
                f"SELECT {scope.key}, i.tier, i.unconverted FROM {scope.source} AND i.unconverted IS NOT NULL",
                scope.params):
            add_sums(unconverted.setdefault(key, {}).setdefault(tier, {}), orjson.loads(amounts))
        keys = sorted(found.keys() | unconverted.keys(), key=lambda k: (k is None, k or ""))
        return {key: _tier_counts(found.get(key, {}), unconverted.get(key, {})) for key in keys}

    def history(self, customer_id: UUID, as_of: datetime | None = None) -> list[Membership]:
        """The customer's stays in each tier, oldest first; only those begun by `as_of` if given.

        Without `as_of` the last stays may end in the future: when, with no new deal, ageing purchases
        move the customer to another tier.
        """
        t = micros(as_of) if as_of else None
        begun = " AND valid_from <= ?" if t is not None else ""
        rows = self.store.query(
            "SELECT tier, valid_from, valid_to FROM segments_intervals WHERE customer_id = ? "
            f"AND (valid_to IS NULL OR valid_to > valid_from){begun} ORDER BY valid_from",
            [str(customer_id), *([t] if t is not None else [])])
        stays: list[Membership] = []
        for tier, valid_from, valid_to in rows:
            left = None if valid_to is None or (t is not None and valid_to > t) else from_micros(valid_to)
            if stays and stays[-1].tier == tier:
                stays[-1] = Membership(tier, stays[-1].entered_at, left)
            else:
                stays.append(Membership(tier, from_micros(valid_from), left))
        return stays

    def movements(self, start: datetime, end: datetime) -> list[Movement]:
        """How many customers changed tier between `start` and `end`, per (tier then, tier after; None: in none):
        counted in SQL, so the answer is at most 12 rows whatever the number of customers (it read every
        customer's tier at both instants into Python: 2 × 50,000 rows for 50,000 customers)."""
        s, e = micros(start), micros(end)
        found = self.store.query(_MOVEMENTS, [s, s, e, e, s, s, e, e])
        moves = {(from_tier, to_tier): int(count) for from_tier, to_tier, count in found}
        order = {tier: i for i, tier in enumerate((None, *TIERS))}
        pairs = sorted(moves, key=lambda pair: (order[pair[0]], order[pair[1]]))
        return [Movement(from_tier, to_tier, moves[from_tier, to_tier]) for from_tier, to_tier in pairs]

    def summary(self, as_of: datetime) -> dict[str, Any]:
        """Every figure of the read model as of `as_of`, JSON-able."""
        segments = self._segments(as_of)
        return {
            "as_of": as_of.isoformat(),
            "tiers": [asdict(count) for count in self.tier_counts(as_of)],
            "customers": {str(s.customer_id): s.to_dict() for s in segments},
            "history": {str(s.customer_id): [m.to_dict() for m in self.history(s.customer_id, as_of)]
                        for s in segments},
            "movements": [asdict(m) for m in self.movements(as_of - timedelta(days=MOVEMENT_DAYS), as_of)],
            "groups": {by: {key: [asdict(c) for c in counts] for key, counts in self.grouped_tier_counts(as_of, by).items()}
                       for by in (*DIMENSIONS, *self.property_names(as_of))},
        }

    def property_names(self, as_of: datetime) -> list[str]:
        """The names of the customer properties set by `as_of`, in order."""
        return [name for (name,) in self.store.query(
            f"SELECT DISTINCT name FROM {PROPERTIES.versions.name} WHERE valid_from <= ? ORDER BY name",
            [micros(as_of)])]

    def _segments(self, as_of: datetime, where: str = "", params: tuple[Any, ...] = (), limit: int | None = None,
                  offset: int = 0) -> list[CustomerSegment]:
        """Segments at `as_of` of the customers matching `where`, most valuable first."""
        t = micros(as_of)
        page = " LIMIT ? OFFSET ?" if limit is not None else ""
        rows = [IntervalRow(*row) for row in self.store.query(
            f"SELECT {_COLUMNS} FROM segments_intervals WHERE {_COVERING}{where} "
            f"ORDER BY monetary_cents DESC, recency DESC, customer_id{page}",
            [t, t, *params, *([limit, offset] if limit is not None else [])])]
        channels = self._preferred_channels([row.customer_id for row in rows], t)
        return [_customer_segment(row, as_of, channels.get(row.customer_id)) for row in rows]

    def _preferred_channels(self, customer_ids: list[str], t: int) -> dict[str, str | None]:
        """Each customer's `preferred_channel` from the touches logged by `t` and the acquisition channel."""
        touches: dict[str, list[str]] = {}
        acquired: dict[str, str] = {}
        for start in range(0, len(customer_ids), CHUNK):
            chunk = customer_ids[start:start + CHUNK]
            marks = ", ".join("?" * len(chunk))
            for customer_id, channel, count in self.store.query(
                "SELECT customer_id, channel, COUNT(*) FROM segments_touches "
                f"WHERE touched_at <= ? AND customer_id IN ({marks}) GROUP BY customer_id, channel", [t, *chunk]):
                touches.setdefault(customer_id, []).extend([channel] * count)
            acquired.update(self.store.query(
                f"SELECT customer_id, channel FROM segments_customers WHERE registered_at <= ? "
                f"AND customer_id IN ({marks})", [t, *chunk]))
        return {c: preferred_channel(touches.get(c, ()), acquired.get(c)) for c in customer_ids}


Filters = Sequence[tuple[str, str]]
"""(dimension, value) pairs a report keeps: region, industry, channel or a customer property name."""
DIMENSIONS = {"region": "c.region", "industry": "c.industry", "channel": "c.channel"}
"""A customer's dimensions from its registration (channel: the acquisition channel)."""


class _Scope:
    """The FROM … WHERE of the intervals at an instant, joined to what `by` and the filters need, the SQL
    of the group key and the GROUP BY, and their parameters (joins', the instant's, the filters')."""

    def __init__(self, t: int, by: str | None, where: Filters) -> None:
        joins: list[str] = []
        params: list[Any] = []
        values = [_dimension(name, t, f"p{n}", joins, params) for n, name in enumerate([by or "", *dict(where)])]
        self.key = values[0] if by else "NULL"
        self.group = f"{values[0]}, i.tier" if by else "i.tier"
        needs_customer = any(name in DIMENSIONS for name in (by, *dict(where)))
        customer = " JOIN segments_customers c ON c.customer_id = i.customer_id" if needs_customer else ""
        filters = "".join(f" AND {value} = ?" for value in values[1:])
        self.source = f"segments_intervals i{customer}{''.join(joins)} WHERE {_COVERING_I}{filters}"
        self.params = [*params, t, t, *(value for _, value in where)]


def _dimension(name: str, t: int, alias: str, joins: list[str], params: list[Any]) -> str:
    """The SQL of a customer's dimension or property `name` as of `t` (UNKNOWN when none), adding the join it
    needs (DomainError for a name that can be neither); "" for no dimension."""
    if not name:
        return ""
    if name in DIMENSIONS:
        return f"COALESCE({DIMENSIONS[name]}, '{UNKNOWN}')"
    joins.append(value_as_of_sql(PROPERTIES.versions, alias, "i.customer_id"))
    params.extend(join_params(require_name(name), t))
    return f"COALESCE({alias}.value, '{UNKNOWN}')"


def _tier_counts(found: dict[str, list[int]], unconverted: dict[str, dict[str, int]]) -> list[TierCount]:
    counts = []
    for tier in TIERS:
        count, value, *sums = found.get(tier, [0] * 5)
        counts.append(TierCount(tier, count, value, *(total / count if count else None for total in sums),
                                dict(sorted(unconverted.get(tier, {}).items()))))
    return counts


def _customer_segment(row: IntervalRow, as_of: datetime, channel: str | None) -> CustomerSegment:
    return CustomerSegment(UUID(row.customer_id), as_of, row.tier, from_micros(row.tier_since), row.recency,
                           row.frequency, row.monetary, row.monetary_cents, row.open_deals,
                           instant(row.last_purchase_at), channel, row.preferred_pipeline,
                           orjson.loads(row.unconverted) if row.unconverted else {})
