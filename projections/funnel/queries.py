"""The funnel read model's query side: the funnel of a pipeline as of an instant, and its flow over a period.

Unfiltered, a report sums the pre-summed tallies (`tally.tallied_facts`); filtered (owner, customer
attributes, campaign, segment, properties), it scans the stage intervals begun by the instant, with owner and
amount taken from the versions valid then. Both find the same `FunnelFacts`; `report.build_report` does the
rest. Grouped (`grouped`), the same scan adds a column per axis (`dimensions`) and GROUP BY it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any
from uuid import UUID

from domain import funnel_rules
from domain.exchange_rates import Conversion, add_sums
from domain.funnel_rules import STUCK_DAYS, stage_levels
from domain.periods import UTC, Period, is_utc
from domain.pipeline import LOST, WON
from projections.funnel.report import (DAY_MICROS, NO_ITEMS, FlowRow, FunnelFacts, FunnelFilters, FunnelReport,
                                       StuckItem, build_report)
from projections.funnel.dimensions import (Axis, FunnelGroup, GroupedReport, PeriodRow, axis, cohort_axis,
                                           merge_facts, period_of_day_number, periods_between, property_join,
                                           require_grain, sort_key)
from projections.funnel.rows import MAX_BAND, band_upper
from projections.funnel.tally import tallied_facts
from projections.ports import Store
from projections.segments import tier_members_sql
from projections.tables import from_micros, micros
from projections.zone_sql import local_day_sql

MAX_PARAMETERS = 999  # host parameters one statement may bind: SQLite's limit before 3.32 (PostgreSQL's: 65,535)


class FunnelQueries:
    """Answers funnel questions from the read model's tables. `zone` is the one its tallies were kept in (the
    installation's, `FunnelReadModel.zone`: the fingerprint makes sure they are) and the default zone of
    periods and cohorts; a query may ask for another's (`zone=`), e.g. UTC."""

    def __init__(self, store: Store, zone: tzinfo = UTC) -> None:
        self.store = store
        self.zone = zone

    def _scope(self, pipeline: str, as_of_us: int, filters: FunnelFilters,
               axes: Sequence[Axis] = ()) -> tuple[str, list[Any]]:
        """FROM/WHERE for the intervals of `pipeline` begun by `as_of`, with item attributes as of then (and the
        joins the axes' columns read)."""
        joins = [property_join(name, as_of_us, f"f{k}") for k, (name, _) in enumerate(filters.properties)]
        sql = ("FROM funnel_intervals i JOIN funnel_items d ON d.item_id = i.item_id "
               "JOIN funnel_versions v ON v.item_id = i.item_id AND v.valid_from <= ? "
               "AND (v.valid_to IS NULL OR v.valid_to > ?)"
               + "".join(join for join, _, _ in joins) + "".join(a.join for a in axes)
               + " WHERE i.pipeline = ? AND i.entered_at <= ?")
        params: list[Any] = [as_of_us, as_of_us, *(p for _, join_params, _ in joins for p in join_params),
                             *(p for a in axes for p in a.params), pipeline, as_of_us]
        for column, value in (("v.owner", filters.owner), ("d.region", filters.region),
                              ("d.industry", filters.industry), ("d.channel", filters.channel),
                              ("d.campaign_id", str(filters.campaign_id) if filters.campaign_id else None)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        for (_, _, expression), (_, value) in zip(joins, filters.properties):
            sql += f" AND {expression} = ?"
            params.append(value)
        if filters.segment is not None:
            members, member_params = tier_members_sql(filters.segment, from_micros(as_of_us))
            sql += f" AND d.customer_id IN ({members})"
            params.extend(member_params)
        return sql, params

    def report(self, pipeline: str, stages: list[tuple[str, str]], as_of: datetime,
               filters: FunnelFilters = FunnelFilters(), stuck_days: float = STUCK_DAYS,
               money: Conversion = Conversion()) -> FunnelReport:
        """The funnel at `as_of`: from the tallies when unfiltered, else by scanning the intervals."""
        t = micros(as_of)
        recorded = None
        if filters == FunnelFilters():
            facts = tallied_facts(self.store, pipeline, stages, t, self.zone)
        else:
            facts = self.scanned_facts(pipeline, stages, t, filters)
            recorded = self.losses_recorded(pipeline, t)
        facts.stuck = self._stuck(pipeline, stages, t, filters, int(stuck_days * DAY_MICROS))
        return build_report(pipeline, stages, as_of, facts, money, recorded)

    def losses_recorded(self, pipeline: str, t: int) -> bool:
        """Whether some item of `pipeline` is lost at `t`: whether its data records losses at all, which a
        filtered or grouped report's rates need (`funnel_rules.win_rate`). One probe of an index."""
        return bool(self.store.query(
            "SELECT 1 FROM funnel_intervals WHERE pipeline = ? AND stage = ? AND entered_at <= ? "
            "AND (left_at IS NULL OR left_at > ?) LIMIT 1", [pipeline, LOST, t, t]))

    def scanned_facts(self, pipeline: str, stages: list[tuple[str, str]], t: int,
                      filters: FunnelFilters = FunnelFilters()) -> FunnelFacts:
        """The facts (but stuck items) from every interval begun by `t`: the path filters need."""
        return self._facts_by(pipeline, stages, t, filters, ()).get((), FunnelFacts())

    def _facts_by(self, pipeline: str, stages: list[tuple[str, str]], t: int, filters: FunnelFilters,
                  axes: Sequence[Axis]) -> dict[tuple[Any, ...], FunnelFacts]:
        """`scanned_facts` per combination of the axes' raw values (one query per fact, whatever their number)."""
        scope, params = self._scope(pipeline, t, filters, axes)
        select, names = _group_columns(axes)
        group_by = f" GROUP BY {', '.join(names)}" if names else ""
        covering = " AND (i.left_at IS NULL OR i.left_at > ?)"
        open_stages = [key for key, _ in stages]
        in_open = f" AND i.stage IN ({', '.join('?' * len(open_stages))})"
        found: dict[tuple[Any, ...], FunnelFacts] = {}
        n = len(axes)

        def facts(row: Sequence[Any]) -> FunnelFacts:
            return found.setdefault(tuple(row[:n]), FunnelFacts())

        for row in self.store.query(  # per currency: never two added together
            f"SELECT {select}i.stage, d.currency, COUNT(*), SUM(v.amount_cents) {scope}{covering} "
            f"GROUP BY {''.join(f'{g}, ' for g in names)}i.stage, d.currency", [*params, t]
        ):
            stage, currency, count, value = row[n:]
            held = facts(row).in_stage
            held[stage] = held.get(stage, NO_ITEMS).plus(count, currency, int(value))
        levels = stage_levels(open_stages)
        level = "CASE i.stage " + " ".join("WHEN ? THEN ?" for _ in levels) + " END"
        level_params = [p for key, i in levels.items() for p in (key, i)]
        groups = "".join(f"{g}, " for g in names)
        lost_now = f"MAX(CASE WHEN i.stage = ?{covering} THEN 1 ELSE 0 END)"
        for row in self.store.query(
            f"SELECT {groups}furthest, lost, COUNT(*) FROM (SELECT i.item_id, {select}MAX({level}) AS furthest, "
            f"{lost_now} AS lost {scope} GROUP BY {groups}i.item_id) reached WHERE furthest IS NOT NULL "
            f"GROUP BY {groups}furthest, lost",
            [*level_params, LOST, t, *params]
        ):
            furthest, lost, count = row[n:]
            found_facts = facts(row)
            found_facts.furthest[furthest] = found_facts.furthest.get(furthest, 0) + count
            if lost:
                found_facts.lost_furthest[furthest] = count
        for row in self.store.query(f"SELECT {select}i.stage, i.length {scope} AND i.left_at <= ?{in_open}",
                                    [*params, t, *open_stages]):
            facts(row).add_stay(row[n], row[n + 1])
        for row in self.store.query(f"SELECT {select}SUM(i.entered_at - d.opened_at) {scope}{covering} "
                                    f"AND i.stage = ?{group_by}", [*params, t, WON]):
            facts(row).won_cycle_total = int(row[n] or 0)
        return found

    def _stuck(self, pipeline: str, stages: list[tuple[str, str]], t: int, filters: FunnelFilters,
               threshold: int, scanned: bool = False) -> list[StuckItem]:
        """Items in an open stage at `t` since before `t - threshold`: still there, or stays longer than it.
        `scanned`: the reference (`_stuck_by`)."""
        return [item for _, item in self._stuck_by(pipeline, stages, t, filters, threshold, (), scanned)]

    def _stuck_by(self, pipeline: str, stages: list[tuple[str, str]], t: int, filters: FunnelFilters,
                  threshold: int, axes: Sequence[Axis],
                  scanned: bool = False) -> list[tuple[tuple[Any, ...], StuckItem]]:
        """`_stuck`, each item with its axes' raw values: among the items `_stuck_candidates` finds, or with
        `scanned` among all (the query before issue 14's flat as-of, kept as the reference the tests hold the
        candidates' answer equal to: tests/support/equivalence.py)."""
        scope, params = self._scope(pipeline, t, filters, axes)
        columns, _ = _group_columns(axes)
        open_stages = [key for key, _ in stages]
        select = (f"SELECT {columns}i.item_id, i.stage, v.owner, v.amount_cents, i.entered_at, d.currency {scope} "
                  f"AND i.stage IN ({', '.join('?' * len(open_stages))}) AND i.entered_at < ? AND ")
        head = [*params, *open_stages, t - threshold]
        n = len(axes)
        if scanned:
            return [(tuple(row[:n]), StuckItem(UUID(item_id), stage, owner, amount, (t - entered) / DAY_MICROS,
                                               currency))
                    for row in self.store.query(f"{select}i.left_at IS NULL UNION ALL {select}i.length > ? "
                                                "AND i.left_at > ?", [*head, *head, threshold, t])
                    for item_id, stage, owner, amount, entered, currency in [row[n:]]]
        candidates = self._stuck_candidates(pipeline, open_stages, t, threshold)
        size = _chunk_size(2 * len(head) + 2, 2)  # each chunk's ids are bound twice, once per half of the union
        return [
            (tuple(row[:n]), StuckItem(UUID(item_id), stage, owner, amount, (t - entered) / DAY_MICROS, currency))
            for start in range(0, len(candidates), size)
            for chunk in [candidates[start:start + size]]
            for among in [f" AND i.item_id IN ({', '.join('?' * len(chunk))})"]
            for row in self.store.query(
                f"{select}i.left_at IS NULL{among} UNION ALL {select}i.length > ? AND i.left_at > ?{among}",
                [*head, *chunk, *head, threshold, t, *chunk],
            )
            for item_id, stage, owner, amount, entered, currency in [row[n:]]
        ]

    def _stuck_candidates(self, pipeline: str, open_stages: list[str], t: int, threshold: int) -> list[str]:
        """The items whose stay in an open stage covers `t` and began before `t - threshold`, from the intervals
        alone: `_stuck_by`'s query, restricted to them, finds the same rows — without reading every stay begun
        before then and joining each to its item's version (a 1M-event history: 50 ms at its end, 14 ms at 10 %,
        and a plan that scanned every version when PostgreSQL misjudged the rows). The stays still going on
        are few (an open stage now: ≈ 1,400 of 185,000 sales stays at 1M); the ended ones covering `t` are found
        per band of their length (`rows.length_band`): in band b, begun after t − 2^(32+b) — one index range
        each, at most ≈ twice the stays it finds, whatever the length of the history."""
        bands = [band for band in range(MAX_BAND + 1) if band_upper(band) > threshold]
        ended = " UNION ALL ".join(
            "SELECT item_id FROM funnel_intervals WHERE pipeline = ? AND length_band = ? AND entered_at > ? "
            "AND entered_at < ? AND left_at > ?" for _ in bands)
        still = (f"SELECT item_id FROM funnel_intervals WHERE pipeline = ? AND stage IN "
                 f"({', '.join('?' * len(open_stages))}) AND left_at IS NULL AND entered_at < ?")
        return sorted({item_id for (item_id,) in self.store.query(
            f"{still}{' UNION ALL ' + ended if bands else ''}",
            [pipeline, *open_stages, t - threshold,
             *(p for band in bands for p in (pipeline, band, t - band_upper(band), t - threshold, t))])})

    def grouped(self, pipeline: str, stages: list[tuple[str, str]], as_of: datetime, by: Sequence[str],
                filters: FunnelFilters = FunnelFilters(), stuck_days: float = STUCK_DAYS,
                cohort: str | None = None, money: Conversion = Conversion(), zone: tzinfo | None = None) -> GroupedReport:
        """One funnel per value of each of the `by` axes (`dimensions.axis`; and per creation day, week, month,
        quarter or year of `zone`'s calendar with `cohort`) among the items the filters keep, as of `as_of`;
        their counts sum to the funnel of all those items. Values are summed per currency and converted with
        `money`, as `report`'s. DomainError for an unknown axis or period."""
        t = micros(as_of)
        axes = [axis(name, t, f"a{k}") for k, name in enumerate(by)] + (
            [cohort_axis(cohort, self._first_opened(pipeline, zone or self.zone), t, zone or self.zone)]
            if cohort else [])
        by = [a.name for a in axes]
        merged: dict[tuple[Any, ...], FunnelFacts] = {}
        for raw, facts in self._facts_by(pipeline, stages, t, filters, axes).items():
            merge_facts(merged.setdefault(_key(axes, raw), FunnelFacts()), facts)
        for raw, item in self._stuck_by(pipeline, stages, t, filters, int(stuck_days * DAY_MICROS), axes):
            merged.setdefault(_key(axes, raw), FunnelFacts()).stuck.append(item)
        recorded = self.losses_recorded(pipeline, t)
        return GroupedReport(pipeline, as_of, list(by), [
            FunnelGroup(dict(zip(by, key)), build_report(pipeline, stages, as_of, merged[key], money, recorded))
            for key in sorted(merged, key=sort_key)
        ], money.reporting, money.to_dict()["rates"])  # type: ignore[arg-type]

    def _first_opened(self, pipeline: str, zone: tzinfo) -> int | None:
        """When the first item of `pipeline` was opened (µs), which bounds the zone's offset changes a cohort's
        SQL meets (`zone_sql`): not asked in UTC, which has none."""
        if is_utc(zone):
            return None
        [(first,)] = self.store.query("SELECT MIN(opened_at) FROM funnel_items WHERE pipeline = ?", [pipeline])
        return first

    def periods(self, pipeline: str, grain: str, start: datetime, end: datetime,
                filters: FunnelFilters = FunnelFilters(), money: Conversion = Conversion(),
                zone: tzinfo | None = None) -> list[PeriodRow]:
        """Per day, week, month, quarter or year of `zone`'s calendar (default the installation's) meeting
        [start, end): items won and lost in it (entries into won or lost; owner and amount as of `end`), their
        win rate and the average cycle (opened → won) of those won. Won values are summed per currency and
        converted with `money`: the rates in force at `end`, the instant whose amounts are counted (as a report
        as of `end` would)."""
        return self.periods_by(pipeline, grain, start, end, filters, (), money, zone).get((), []) or [
            _period_row(period, {}, money) for period in periods_between(start, end, grain, zone or self.zone)]

    def periods_by(self, pipeline: str, grain: str, start: datetime, end: datetime, filters: FunnelFilters,
                   by: Sequence[str], money: Conversion = Conversion(),
                   zone: tzinfo | None = None) -> dict[tuple[Any, ...], list[PeriodRow]]:
        """`periods` per value of each of the `by` axes (as of `end`), for the values with a decision in
        [start, end): one query with GROUP BY."""
        require_grain(grain)
        zone = zone or self.zone
        t1, t2 = micros(start), micros(end)
        axes = [axis(name, t2, f"a{k}") for k, name in enumerate(by)]
        scope, params = self._scope(pipeline, t2, filters, axes)
        select, names = _group_columns(axes)
        n = len(axes)
        decided: dict[tuple[Any, ...], dict[tuple[str, str], _Decided]] = {}
        for row in self.store.query(  # per currency: never two added together
            f"SELECT {select}{local_day_sql('i.entered_at', zone, start, end)} AS day_, i.stage, d.currency, COUNT(*), SUM(v.amount_cents), "
            f"SUM(i.entered_at - d.opened_at) {scope} AND i.stage IN (?, ?) AND i.entered_at >= ? "
            f"AND i.entered_at < ? GROUP BY {''.join(f'{g}, ' for g in names)}day_, i.stage, d.currency",
            [*params, WON, LOST, t1, t2]
        ):
            day, stage, currency, count, value, cycles = row[n:]
            label = period_of_day_number(day, grain, zone).label
            total = decided.setdefault(tuple(row[:n]), {}).setdefault((label, stage), _Decided())
            total.count += count
            add_sums(total.values, {currency: int(value)})
            total.cycles += int(cycles)
        starts = periods_between(start, end, grain, zone)
        recorded = self.losses_recorded(pipeline, t2)
        return {key: [_period_row(period, decided[key], money, recorded) for period in starts]
                for key in sorted(decided, key=sort_key)}

    def first_decision(self, pipeline: str) -> datetime | None:
        """When the first item of `pipeline` was won or lost (None: none was yet)."""
        [(first,)] = self.store.query("SELECT MIN(entered_at) FROM funnel_intervals WHERE pipeline = ? "
                                      "AND stage IN (?, ?)", [pipeline, WON, LOST])
        return None if first is None else from_micros(first)

    def flow(self, pipeline: str, stages: list[tuple[str, str]], start: datetime, end: datetime,
             filters: FunnelFilters = FunnelFilters()) -> list[FlowRow]:
        """Per stage, in [start, end): items that entered it, advanced out of it, and were lost from it."""
        t1, t2 = micros(start), micros(end)
        scope, params = self._scope(pipeline, t2, filters)
        order = stage_levels([key for key, _ in stages])
        entered = {key: 0 for key, _ in stages}
        advanced, lost = dict(entered), dict(entered)
        for stage, previous, count in self.store.query(
            f"SELECT i.stage, i.prev_stage, COUNT(*) {scope} AND i.entered_at >= ? AND i.entered_at < ? "
            "GROUP BY i.stage, i.prev_stage", [*params, t1, t2]
        ):
            if stage in entered:
                entered[stage] += count
            if previous in order and stage == LOST:
                lost[previous] += count
            elif previous in order and order.get(stage, -1) > order[previous]:
                advanced[previous] += count
        return [FlowRow(key, entered[key], advanced[key], lost[key]) for key, _ in stages]


def pipeline_keys(store: Store) -> list[str]:
    """The keys of the pipelines the funnel has met: those defined, and standard ones its items used first."""
    return [key for (key,) in store.query("SELECT pipeline FROM funnel_pipelines ORDER BY pipeline")]


def _group_columns(axes: Sequence[Axis]) -> tuple[str, list[str]]:
    """The SELECT columns (`<sql> AS g0, …, `) and their names, of the axes."""
    names = [f"g{k}" for k in range(len(axes))]
    return "".join(f"{a.sql} AS {name}, " for a, name in zip(axes, names)), names


def _chunk_size(bound: int, per_id: int) -> int:
    """Ids per statement that binds `bound` parameters of its own and `per_id` per id, within `MAX_PARAMETERS`
    (the stuck items' query, 500 ids bound twice beside its scope's, bound 1,000+: SQLite before 3.32 refused
    it; a filter's parameters grow `bound`, so the size is worked out per statement, not fixed)."""
    return max(1, (MAX_PARAMETERS - bound) // per_id)


def _key(axes: Sequence[Axis], raw: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(None if value is None else a.key(value) for a, value in zip(axes, raw))


@dataclass
class _Decided:
    """Entries into won (or lost) in one period: how many, their values per currency, Σ opened → entered (µs)."""

    count: int = 0
    values: dict[str, int] = field(default_factory=dict)
    cycles: int = 0


def _period_row(period: Period, decided: dict[tuple[str, str], _Decided], money: Conversion,
                losses_recorded: bool | None = None) -> PeriodRow:
    label = period.label
    won = decided.get((label, WON), _Decided())
    lost = decided.get((label, LOST), _Decided()).count
    cycle = funnel_rules.average_cycle(won.cycles, won.count)
    value = money.convert(won.values)
    rate, note = (funnel_rules.win_rate(won.count, lost, losses_recorded),
                  funnel_rules.win_rate_note(won.count, lost, losses_recorded))
    return PeriodRow(label, period.start.astimezone(period.zone), won.count, lost, value.cents, rate,
                     None if cycle is None else cycle / DAY_MICROS, money.reporting, value.unconverted, note,
                     period.end.astimezone(period.zone))
