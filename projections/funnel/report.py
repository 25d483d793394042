"""The funnel's answers (the report and flow dataclasses) and the facts every path finds out for a report.

Both paths (the SQL read model, `queries`, and the replay, `fold`) gather the same `FunnelFacts` and
build the report from them with `build_report`, so that the definitions (`domain.funnel_rules`) are
applied in one place.

Values are gathered per currency and converted here, into the reporting currency at the rates in force at
the report's instant (`Conversion`): a funnel as of T is what its items were worth at T. A currency without
a rate then is left out of every value and listed in `unconverted` (per stage and for the report).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from domain import funnel_rules
from domain.exchange_rates import Conversion, add_sums
from domain.pipeline import LOST, WON

DAY_MICROS = 86_400_000_000
STAY_CLASS_RATIO = 1.02  # stay lengths are classed on a geometric grid 2% wide (±1% around each class)
_LOG_RATIO = math.log(STAY_CLASS_RATIO)


@dataclass(frozen=True)
class FunnelFilters:
    """Which items count; every filter is optional. Owner and segment are taken at the report's instant."""

    owner: str | None = None
    region: str | None = None
    industry: str | None = None
    channel: str | None = None
    campaign_id: UUID | None = None
    segment: str | None = None  # a value tier (domain.segmentation.TIERS) of the item's customer
    properties: tuple[tuple[str, str], ...] = ()  # (name, value): the item's property then, else its customer's

    def matches(self, owner: str, region: str | None, industry: str | None, channel: str | None,
                campaign_id: UUID | None) -> bool:
        wanted = (self.owner, self.region, self.industry, self.channel, self.campaign_id)
        actual = (owner, region, industry, channel, campaign_id)
        return all(w is None or w == a for w, a in zip(wanted, actual))


@dataclass(frozen=True)
class StuckItem:
    item_id: UUID
    stage: str
    owner: str
    amount_cents: int
    days_in_stage: float
    currency: str = ""  # of `amount_cents`, as recorded (not converted)


class StageTotal(NamedTuple):
    """The items in a stage at an instant and their value, in cents per currency (never added together)."""

    items: int
    values: dict[str, int]

    def plus(self, items: int, currency: str, cents: int) -> StageTotal:
        return StageTotal(self.items + items, add_sums(dict(self.values), {currency: cents}))


NO_ITEMS = StageTotal(0, {})  # shared: never changed in place (`plus` copies)


def stay_class(length_us: int) -> int:
    """The class of a stay's length: 0 under a second, else the nearest power of STAY_CLASS_RATIO (in s)."""
    if length_us < 1_000_000:
        return 0
    return 1 + round(math.log(length_us / 1_000_000) / _LOG_RATIO)


def class_length(stay_class_: int) -> int:
    """The length (µs) a class stands for: within ±1% of every stay in it."""
    return 0 if stay_class_ == 0 else round(1_000_000 * STAY_CLASS_RATIO ** (stay_class_ - 1))


@dataclass
class FunnelFacts:
    """What a path must find out about one pipeline at one instant; the report is derived from it.

    Dwell times are kept as histograms of stay classes (`stay_class`), so that every path (and the
    pre-summed tallies) yields exactly the same percentiles, each within 1% of the exact one.
    """

    in_stage: dict[str, StageTotal] = field(default_factory=dict)  # stage → its items and their value
    furthest: dict[int, int] = field(default_factory=dict)  # furthest stage index reached → items
    lost_furthest: dict[int, int] = field(default_factory=dict)  # the same, of the items lost at the instant
    stays: dict[str, dict[int, int]] = field(default_factory=dict)  # stage → stay class → ended stays
    won_cycle_total: int = 0  # Σ opened → won (µs) over the items won as of the instant
    stuck: list[StuckItem] = field(default_factory=list)

    def add_stay(self, stage: str, length_us: int) -> None:
        histogram = self.stays.setdefault(stage, {})
        key = stay_class(length_us)
        histogram[key] = histogram.get(key, 0) + 1


@dataclass(frozen=True)
class StageRow:
    stage: str
    label: str
    items: int
    value_cents: int  # in the report's currency, what could be converted
    reached: int
    advanced: int  # reached a later stage (or won)
    lost: int  # lost with this as the furthest stage reached
    still_open: int  # open, with this as the furthest stage reached: not decided yet
    conversion_to_next: float | None  # advanced / (advanced + lost): domain.funnel_rules.stage_conversion
    conversion_note: str | None  # why conversion_to_next is None
    drop_off: float | None
    median_days: float | None
    p90_days: float | None
    unconverted: dict[str, int] = field(default_factory=dict)  # currency → cents without a rate at the instant


@dataclass(frozen=True)
class FlowRow:
    """Per stage over a period: items that entered it, advanced out of it, and were lost from it."""

    stage: str
    entered: int
    advanced: int
    lost: int


@dataclass(frozen=True)
class FunnelReport:
    pipeline: str
    as_of: datetime
    rows: list[StageRow]
    won: int
    lost: int
    won_value_cents: int
    win_rate: float | None
    win_rate_note: str | None  # why win_rate is None
    average_cycle_days: float | None
    bottleneck: str | None
    stuck: list[StuckItem]  # the longest-stuck first; maybe only the first of them (`stuck_limited`)
    stuck_total: int  # all the stuck items, however many `stuck` lists
    currency: str = "CNY"  # of every value but the stuck items' amounts (each in its own)
    rates: dict[str, Any] = field(default_factory=dict)  # the rates used: currency → rate and its date
    unconverted: dict[str, int] = field(default_factory=dict)  # open and won values without a rate at the instant
    won_unconverted: dict[str, int] = field(default_factory=dict)  # the won values among `unconverted`

    @property
    def open_items(self) -> int:
        return sum(row.items for row in self.rows)

    def stuck_limited(self, limit: int | None) -> FunnelReport:
        """The report listing only the `limit` longest-stuck items (all with None); `stuck_total` stays."""
        return self if limit is None else replace(self, stuck=self.stuck[:limit])

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["as_of"] = self.as_of.isoformat()
        result["open_items"] = self.open_items
        for stuck in result["stuck"]:
            stuck["item_id"] = str(stuck["item_id"])
        return result


def percentile(values: list[int], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..1) of integer values, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def histogram_percentile(histogram: dict[int, int], q: float) -> float | None:
    """`percentile` of the class lengths of a stay-class histogram (class → count)."""
    ordered = sorted((stay_class_, count) for stay_class_, count in histogram.items() if count)
    total = sum(count for _, count in ordered)
    if not total:
        return None
    position = (total - 1) * q
    low, high = _nth(ordered, math.floor(position)), _nth(ordered, math.ceil(position))
    return low + (high - low) * (position - math.floor(position))


def _nth(ordered: list[tuple[int, int]], index: int) -> int:
    """The class length of the index-th stay (0-based) of a sorted histogram."""
    for stay_class_, count in ordered:
        if index < count:
            return class_length(stay_class_)
        index -= count
    raise IndexError(index)


def _days(micros: float | None) -> float | None:
    return None if micros is None else micros / DAY_MICROS


def build_report(pipeline: str, stages: list[tuple[str, str]], as_of: datetime, facts: FunnelFacts,
                 money: Conversion = Conversion(), losses_recorded: bool | None = None) -> FunnelReport:
    """The report from the facts, values converted with `money` (default: CNY only, others unconverted).
    `losses_recorded`: whether the pipeline has a lost item at the instant, which a filtered or grouped
    report's own facts cannot tell (default: whether these facts have one)."""
    won, won_values = facts.in_stage.get(WON, NO_ITEMS)
    won_value = money.convert(won_values)
    lost, _ = facts.in_stage.get(LOST, NO_ITEMS)
    recorded = lost > 0 if losses_recorded is None else losses_recorded
    rows: list[StageRow] = []
    unconverted: dict[str, int] = {}
    outcomes = funnel_rules.stage_outcomes(facts.furthest, facts.lost_furthest, len(stages))
    for (key, label), outcome in zip(stages, outcomes):
        items, values = facts.in_stage.get(key, NO_ITEMS)
        value = money.convert(values)
        add_sums(unconverted, value.unconverted)
        stays = facts.stays.get(key, {})
        entered = items > 0 or any(stays.values())  # in it now, or a stay in it ended: not only skipped
        conversion = funnel_rules.stage_conversion(outcome, losses_recorded=recorded, entered=entered)
        rows.append(StageRow(key, label, items, value.cents, *outcome, conversion,
                             funnel_rules.stage_conversion_note(outcome, recorded, entered),
                             funnel_rules.drop_off(conversion),
                             _days(histogram_percentile(stays, 0.5)), _days(histogram_percentile(stays, 0.9)),
                             value.unconverted))
    add_sums(unconverted, won_value.unconverted)
    return FunnelReport(
        pipeline=pipeline,
        as_of=as_of,
        rows=rows,
        won=won,
        lost=lost,
        won_value_cents=won_value.cents,
        win_rate=funnel_rules.win_rate(won, lost, recorded),
        win_rate_note=funnel_rules.win_rate_note(won, lost, recorded),
        average_cycle_days=_days(funnel_rules.average_cycle(facts.won_cycle_total, won)),
        bottleneck=funnel_rules.bottleneck([(row.stage, row.conversion_to_next) for row in rows]),
        stuck=sorted(facts.stuck, key=lambda s: (-s.days_in_stage, str(s.item_id))),
        stuck_total=len(facts.stuck),
        currency=money.reporting, rates=money.to_dict()["rates"],  # type: ignore[arg-type]
        unconverted=dict(sorted(unconverted.items())),
        won_unconverted=dict(sorted(won_value.unconverted.items())),
    )
