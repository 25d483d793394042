"""The funnel read model's query side: the funnel of a pipeline as of an instant, and its flow over a period.

Unfiltered, a report sums the pre-summed tallies (`tally.tallied_facts`); filtered (owner, customer
attributes, campaign, segment), it scans the stage intervals begun by the instant, with owner and amount
taken from the versions valid then. Both find the same `FunnelFacts`; `report.build_report` does the rest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.exchange_rates import Conversion
from domain.funnel_rules import STUCK_DAYS, stage_levels
from domain.pipeline import LOST, WON
from projections.funnel.report import (DAY_MICROS, NO_ITEMS, FlowRow, FunnelFacts, FunnelFilters, FunnelReport,
                                       StuckItem, build_report)
from projections.funnel.tally import tallied_facts
from projections.ports import Store
from projections.segments import tier_members_sql
from projections.tables import from_micros, micros


class FunnelQueries:
    """Answers funnel questions from the read model's tables."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _scope(self, pipeline: str, as_of_us: int, filters: FunnelFilters) -> tuple[str, list[Any]]:
        """FROM/WHERE for the intervals of `pipeline` begun by `as_of`, with item attributes as of then."""
        sql = ("FROM funnel_intervals i JOIN funnel_items d ON d.item_id = i.item_id "
               "JOIN funnel_versions v ON v.item_id = i.item_id AND v.valid_from <= ? "
               "AND (v.valid_to IS NULL OR v.valid_to > ?) WHERE i.pipeline = ? AND i.entered_at <= ?")
        params: list[Any] = [as_of_us, as_of_us, pipeline, as_of_us]
        for column, value in (("v.owner", filters.owner), ("d.region", filters.region),
                              ("d.industry", filters.industry), ("d.channel", filters.channel),
                              ("d.campaign_id", str(filters.campaign_id) if filters.campaign_id else None)):
            if value is not None:
                sql += f" AND {column} = ?"
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
        if filters == FunnelFilters():
            facts = tallied_facts(self.store, pipeline, stages, t)
        else:
            facts = self.scanned_facts(pipeline, stages, t, filters)
        facts.stuck = self._stuck(pipeline, stages, t, filters, int(stuck_days * DAY_MICROS))
        return build_report(pipeline, stages, as_of, facts, money)

    def scanned_facts(self, pipeline: str, stages: list[tuple[str, str]], t: int,
                      filters: FunnelFilters = FunnelFilters()) -> FunnelFacts:
        """The facts (but stuck items) from every interval begun by `t`: the path filters need."""
        scope, params = self._scope(pipeline, t, filters)
        covering = " AND (i.left_at IS NULL OR i.left_at > ?)"
        open_stages = [key for key, _ in stages]
        in_open = f" AND i.stage IN ({', '.join('?' * len(open_stages))})"
        facts = FunnelFacts()
        for stage, currency, count, value in self.store.query(  # per currency: never two added together
            f"SELECT i.stage, d.currency, COUNT(*), SUM(v.amount_cents) {scope}{covering} GROUP BY i.stage, d.currency",
            [*params, t]
        ):
            facts.in_stage[stage] = facts.in_stage.get(stage, NO_ITEMS).plus(count, currency, int(value))
        levels = stage_levels(open_stages)
        level = "CASE i.stage " + " ".join("WHEN ? THEN ?" for _ in levels) + " END"
        level_params = [p for key, i in levels.items() for p in (key, i)]
        lost_now = f"MAX(CASE WHEN i.stage = ?{covering} THEN 1 ELSE 0 END)"
        for furthest, lost, count in self.store.query(
            f"SELECT furthest, lost, COUNT(*) FROM (SELECT i.item_id, MAX({level}) AS furthest, {lost_now} AS lost "
            f"{scope} GROUP BY i.item_id) reached WHERE furthest IS NOT NULL GROUP BY furthest, lost",
            [*level_params, LOST, t, *params]
        ):
            facts.furthest[furthest] = facts.furthest.get(furthest, 0) + count
            if lost:
                facts.lost_furthest[furthest] = count
        for stage, length in self.store.query(
            f"SELECT i.stage, i.length {scope} AND i.left_at <= ?{in_open}", [*params, t, *open_stages]
        ):
            facts.add_stay(stage, length)
        [(cycles,)] = self.store.query(
            f"SELECT SUM(i.entered_at - d.opened_at) {scope}{covering} AND i.stage = ?", [*params, t, WON]
        )
        facts.won_cycle_total = int(cycles or 0)
        return facts

    def _stuck(self, pipeline: str, stages: list[tuple[str, str]], t: int, filters: FunnelFilters,
               threshold: int) -> list[StuckItem]:
        """Items in an open stage at `t` since before `t - threshold`: still there, or stays longer than it."""
        scope, params = self._scope(pipeline, t, filters)
        open_stages = [key for key, _ in stages]
        select = (f"SELECT i.item_id, i.stage, v.owner, v.amount_cents, i.entered_at, d.currency {scope} "
                  f"AND i.stage IN ({', '.join('?' * len(open_stages))}) AND i.entered_at < ? AND ")
        head = [*params, *open_stages, t - threshold]
        return [
            StuckItem(UUID(item_id), stage, owner, amount, (t - entered) / DAY_MICROS, currency)
            for item_id, stage, owner, amount, entered, currency in self.store.query(
                f"{select}i.left_at IS NULL UNION ALL {select}i.length > ? AND i.left_at > ?",
                [*head, *head, threshold, t],
            )
        ]

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
