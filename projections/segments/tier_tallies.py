"""Pre-summed tier counts: the customers per tier as of T, and their sums, from dated changes (issue 14).

Counting the customers in each tier at T read every customer's interval covering T (`segments_intervals`): a
scan growing with the customers ever known (1M-event history: 30 ms at 10 % of it, 104 ms at its end). Each
interval `[valid_from, valid_to)` is instead two dated changes: +1 customer (and + its value, R, F, M and
unconverted amounts) in its tier at `valid_from`, −1 (and − the same) at `valid_to` — the time-driven
changes included: a tier that changes with the mere passing of time (a purchase ageing out of the 365-day
window, recency dropping at 30/90/180/365 days) is already a boundary of the customer's timeline
(`domain.segmentation.segment_timeline`), an interval starting at that instant, so it is dated and tallied like
the rest; an interval ending in the future (the next ageing) is simply a change not yet counted before then.
The changes are summed per UTC day and month (`segments_tallies`), so that the counts as of T are the months
before T's month, the days of T's month before T's day, and the intervals beginning or ending in T's day up
to T (read by index: `(valid_from)`, `(valid_to)`) — ≈ 24 + 30 periods × 3 tiers × the partitions that had a
change, whatever the length of the history.

A customer's interval the handlers rewrite (a recomputed timeline) takes its old changes back and adds its
new ones (`tally_rewrite`): a sum does not care about order, so any order of arrival (imports add events to
the past) gives the same tallies. A tally that comes back to nothing is deleted, so that a rebuild by another
path (services/bulk: `set_based.TALLIES_`), which never writes one, finds the same rows. Each tally is kept per
home partition of the customers (`part`), as the funnel's (`projections.funnel.tally`): projectors fed
different partitions at once never write the same row.
"""

from __future__ import annotations

from typing import Any, TypedDict
from uuid import UUID

import orjson

from domain.exchange_rates import add_sums
from domain.partitions import partition_of
from projections.ports import Store
from projections.read_model import Rows
from projections.segments.rows import IntervalRow
from projections.tables import Table, month_of

DAY_MICROS = 86_400_000_000
SUMS = ("customers", "value_cents", "recency", "frequency", "monetary")
"""The summed columns, in `queries._tier_counts`'s order: customers and the sums of monetary_cents, R, F, M."""


class TierTallyRow(TypedDict):
    """The changes of one UTC day (`grain` "d") or month ("m", `period` its first day number) to one tier, of
    the customers of one home partition (`part`)."""

    grain: str
    period: int
    part: int
    tier: str
    customers: int
    value_cents: int
    recency: int
    frequency: int
    monetary: int
    unconverted: str | None  # currency → cents as JSON, keys in order (as the bulk path writes it); None: none


TALLIES = Table(
    "segments_tallies",
    (("grain", "TEXT"), ("period", "INTEGER"), ("part", "INTEGER"), ("tier", "TEXT"), ("customers", "BIGINT"),
     ("value_cents", "BIGINT"), ("recency", "BIGINT"), ("frequency", "BIGINT"), ("monetary", "BIGINT"),
     ("unconverted", "TEXT")),
    ("grain", "period", "part", "tier"), row_type=TierTallyRow,
)


def tally_rewrite(old: IntervalRow | None, new: IntervalRow, rows: Rows) -> None:
    """Take back the changes of the interval row `old` (None: there was none) and add those of `new`."""
    for row, sign in ((old, -1), (new, 1)):
        if row is None or row.tier is None:  # none, or superseded (`rows.superseded`): in no tier
            continue
        _add(row, row.valid_from, sign, rows)
        if row.valid_to is not None:
            _add(row, row.valid_to, -sign, rows)


def _add(interval: IntervalRow, at: int, sign: int, rows: Rows) -> None:
    """Add the interval's sums × `sign` to the tallies of the day and month of `at` (µs)."""
    day, part = at // DAY_MICROS, partition_of(UUID(interval.customer_id))
    values = (1, interval.monetary_cents, interval.recency, interval.frequency, interval.monetary)
    amounts = orjson.loads(interval.unconverted) if interval.unconverted else {}
    for grain, period in (("d", day), ("m", month_of(day))):
        key = (grain, period, part, interval.tier)
        tally: TierTallyRow | None = rows.get(TALLIES, *key)
        if tally is None:
            tally = TierTallyRow(grain=grain, period=period, part=part, tier=interval.tier, customers=0,
                                 value_cents=0, recency=0, frequency=0, monetary=0, unconverted=None)
        for name, value in zip(SUMS, values):
            tally[name] += sign * value  # type: ignore[literal-required]
        held = add_sums(orjson.loads(tally["unconverted"]) if tally["unconverted"] else {}, amounts, sign)
        tally["unconverted"] = orjson.dumps(held, option=orjson.OPT_SORT_KEYS).decode() if held else None
        if tally["unconverted"] is None and not any(tally[name] for name in SUMS):  # type: ignore[literal-required]
            rows.delete(TALLIES, *key)
        else:
            rows.put(TALLIES, tally)


def tallied_sums(store: Store, t: int) -> tuple[dict[str, list[int]], dict[str, dict[str, int]]]:
    """Per tier as of `t` (µs): [customers, Σ monetary_cents, Σ R, Σ F, Σ M] of the customers in it, and
    currency → cents they won without a rate into CNY (`queries._tier_counts`'s input), from the tallies."""
    day = t // DAY_MICROS
    month, day_start = month_of(day), day * DAY_MICROS
    periods = "((grain = 'm' AND period < ?) OR (grain = 'd' AND period >= ? AND period < ?))"
    found: dict[str, list[int]] = {}
    unconverted: dict[str, dict[str, int]] = {}

    def add(tier: str, sums: tuple[Any, ...], amounts: str | None, sign: int) -> None:
        total = found.setdefault(tier, [0] * len(SUMS))
        for n, value in enumerate(sums):
            total[n] += sign * int(value or 0)
        if amounts:
            add_sums(unconverted.setdefault(tier, {}), orjson.loads(amounts), sign)

    sums = ", ".join(f"SUM({name})" for name in SUMS)
    for tier, *row in store.query(f"SELECT tier, {sums} FROM {TALLIES.name} WHERE {periods} GROUP BY tier",
                                  [month, month, day]):
        add(tier, tuple(row), None, 1)
    for tier, amounts in store.query(f"SELECT tier, unconverted FROM {TALLIES.name} WHERE {periods} "
                                     "AND unconverted IS NOT NULL", [month, month, day]):
        add(tier, (), amounts, 1)
    interval_sums = "COUNT(*), SUM(monetary_cents), SUM(recency), SUM(frequency), SUM(monetary)"
    for column, sign in (("valid_from", 1), ("valid_to", -1)):  # T's day: the intervals begun, and ended, by T
        day_of = f"{column} >= ? AND {column} <= ? AND tier IS NOT NULL"
        for tier, *row in store.query(f"SELECT tier, {interval_sums} FROM segments_intervals WHERE {day_of} "
                                      "GROUP BY tier", [day_start, t]):
            add(tier, tuple(row), None, sign)
        for tier, amounts in store.query(f"SELECT tier, unconverted FROM segments_intervals WHERE {day_of} "
                                         "AND unconverted IS NOT NULL", [day_start, t]):
            add(tier, (), amounts, sign)
    return found, unconverted
