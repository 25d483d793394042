"""What a funnel is grouped by (owner, region, industry, channel, campaign, a named property, a creation
cohort), as SQL over the read model's tables, and the calendar periods of cohorts and of the periods view.

A group-by adds one column per axis to the queries a filtered report makes (`FunnelQueries.grouped`): one
query per fact with GROUP BY, whatever the number of values, rather than one filtered report per value.
Periods (days, ISO weeks, months, quarters, years) are those of a time zone's calendar (`domain.periods`): the
installation's by default, UTC only when asked; SQL finds an instant's local day with `zone_sql`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from typing import Any, NamedTuple

from domain.base import EARLIEST
from domain.errors import DomainError
from domain.exchange_rates import DEFAULT_REPORTING_CURRENCY, add_sums
from domain.periods import GRAINS, UTC, Period, day_of_number, period_of_day
from domain.periods import periods_between as zone_periods_between
from domain.properties import require_name
from projections.funnel.report import NO_ITEMS, FunnelFacts, FunnelReport, StageTotal
from projections.tables import from_micros
from projections.zone_sql import local_day_sql

BUILT_IN = {"owner": "v.owner", "region": "d.region", "industry": "d.industry", "channel": "d.channel",
            "campaign": "d.campaign_id"}
"""Dimensions every item has (owner as of the report's instant, the others from its creation)."""


class Axis(NamedTuple):
    """One group-by: its SQL over `d` (funnel_items), `v` (the version as of T) and its own join, the join's
    parameters, and the group key a raw value stands for (a cohort's day number → its period)."""

    name: str
    sql: str
    join: str
    params: list[Any]
    key: Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def property_join(name: str, t: int, alias: str) -> tuple[str, list[Any], str]:
    """The joins of an item's property `name` as of `t` and its customer's then, their parameters, and the
    value they give: the item's own, else its customer's, else NULL (a deal's product is its own, its account
    size usually its account's). Joins rather than a subquery in the SELECT: SQLite would run that once for
    the column and again for the GROUP BY (≈ 3× slower on the demo's 2.5k deals)."""
    one = (" LEFT JOIN funnel_properties {a} ON {a}.subject_id = {subject} AND {a}.name = ? "
           "AND {a}.valid_from <= ? AND ({a}.valid_to IS NULL OR {a}.valid_to > ?)")
    own, customers = f"{alias}i", f"{alias}c"
    return (one.format(a=own, subject="d.item_id") + one.format(a=customers, subject="d.customer_id"),
            [name, t, t, name, t, t], f"COALESCE({own}.value, {customers}.value)")


def axis(by: str, t: int, alias: str) -> Axis:
    """The axis `--by` names: a built-in dimension or a property, as of `t`, its joins' tables called `alias…`
    (DomainError if it can be neither)."""
    if by in BUILT_IN:
        return Axis(by, BUILT_IN[by], "", [], _same)
    join, params, value = property_join(require_name(by), t, alias)
    return Axis(by, value, join, params, _same)


def require_grain(grain: str) -> str:
    if grain not in GRAINS:
        raise DomainError(f"unknown period {grain!r}; expected one of: {', '.join(GRAINS)}")
    return grain


def cohort_axis(grain: str, first: int | None, t: int, zone: tzinfo = UTC) -> Axis:
    """Items by the day, week, month, quarter or year of `zone`'s calendar they were created in (opened,
    captured), among those created in [first, t] (µs; None: from the start of business time)."""
    require_grain(grain)
    start = EARLIEST if first is None else from_micros(first)
    return Axis("cohort", local_day_sql("d.opened_at", zone, start, from_micros(t + 1)), "", [],
                lambda day: period_of_day(day_of_number(day), grain, zone).label)


def period_of_day_number(day: int, grain: str, zone: tzinfo) -> Period:
    """The period of `grain` holding the local day number `day` (days since 1970-01-01 in `zone`)."""
    return period_of_day(day_of_number(day), grain, zone)


def merge_facts(total: FunnelFacts, facts: FunnelFacts) -> None:
    """Add one group's facts into another's (days of one cohort into its month)."""
    for stage, (items, values) in facts.in_stage.items():  # per currency: never two added together
        before = total.in_stage.get(stage, NO_ITEMS)
        total.in_stage[stage] = StageTotal(before.items + items, add_sums(dict(before.values), values))
    for level, count in facts.furthest.items():
        total.furthest[level] = total.furthest.get(level, 0) + count
    for level, count in facts.lost_furthest.items():
        total.lost_furthest[level] = total.lost_furthest.get(level, 0) + count
    for stage, histogram in facts.stays.items():
        into = total.stays.setdefault(stage, {})
        for stay_class_, count in histogram.items():
            into[stay_class_] = into.get(stay_class_, 0) + count
    total.won_cycle_total += facts.won_cycle_total
    total.stuck.extend(facts.stuck)


@dataclass(frozen=True)
class FunnelGroup:
    """The funnel of the items with one value of each axis (None: items without one, e.g. no such property)."""

    key: dict[str, Any]
    report: FunnelReport


@dataclass(frozen=True)
class GroupedReport:
    """The groups' funnels, every value in `currency` at the rates `rates` (those of a plain report then)."""

    pipeline: str
    as_of: datetime
    by: list[str]
    groups: list[FunnelGroup]
    currency: str = DEFAULT_REPORTING_CURRENCY
    rates: dict[str, Any] = field(default_factory=dict)

    @property
    def unconverted(self) -> dict[str, int]:
        """The groups' values without a rate at the instant, per currency (each group lists its own)."""
        total: dict[str, int] = {}
        for group in self.groups:
            add_sums(total, group.report.unconverted)
        return dict(sorted(total.items()))

    def stuck_limited(self, limit: int | None) -> GroupedReport:
        """Each group's report listing only its `limit` longest-stuck items; each keeps its `stuck_total`."""
        return self if limit is None else replace(
            self, groups=[FunnelGroup(g.key, g.report.stuck_limited(limit)) for g in self.groups])

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "as_of": self.as_of.isoformat(), "by": self.by,
                "currency": self.currency, "rates": self.rates, "unconverted": self.unconverted,
                "groups": [{"key": g.key, **g.report.to_dict()} for g in self.groups]}


@dataclass(frozen=True)
class PeriodRow:
    """Items decided (won or lost) in one period of a zone's calendar, their win rate and the average cycle of
    those won. `start` and `end` are in that zone (displayed times carry their zone: `+08:00`)."""

    period: str
    start: datetime
    won: int
    lost: int
    won_value_cents: int  # in `currency`, what could be converted
    win_rate: float | None
    average_cycle_days: float | None
    currency: str = DEFAULT_REPORTING_CURRENCY
    unconverted: dict[str, int] = field(default_factory=dict)  # currency → won cents without a rate
    win_rate_note: str | None = None  # why `win_rate` is None (`funnel_rules.win_rate_note`)
    end: datetime | None = None  # exclusive: the next period's start


def periods_between(start: datetime, end: datetime, grain: str, zone: tzinfo = UTC) -> list[Period]:
    """The periods of `zone`'s calendar that meet [start, end) (`domain.periods`; the grain checked)."""
    return zone_periods_between(start, end, require_grain(grain), zone)


def sort_key(key: Sequence[Any]) -> tuple[Any, ...]:
    """Groups in order of their values, items without a value last."""
    return tuple((value is None, "" if value is None else str(value)) for value in key)
