"""The funnel read model: stage intervals and owner/amount versions of pipeline items, in business time.

Items are deals (sales or any pipeline), leads (marketing) and tickets (service); see funnel_steps.
An item's life becomes stage intervals `[entered_at, left_at)` (won and lost are terminal stages) and
versions of its owner and amount `[valid_from, valid_to)`. "The funnel as of T" is then a set of
indexed range queries (`entered_at <= T < left_at`) rather than a replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.pipeline import LOST, WON, Pipeline
from projections.base import ReadModel, Rows
from projections.funnel_steps import FUNNEL_EVENTS, Enter, Move, Profile, Revise, funnel_steps
from projections.funnel_report import (
    DAY_MICROS,
    FunnelFacts,
    FunnelFilters,
    FunnelReport,
    StuckItem,
    build_report,
)
from projections.funnel_tally import (
    TALLY_TABLES,
    Change,
    arrived,
    define,
    insert_stage,
    left,
    levels_of,
    record,
    revalued,
    tallied_facts,
)
from projections.segments import tier_members_sql
from projections.tables import Table, from_micros, micros
from projections.ports import Store

CUSTOMERS = Table(
    "funnel_customers",
    (("customer_id", "TEXT"), ("region", "TEXT"), ("industry", "TEXT"), ("channel", "TEXT")),
    ("customer_id",),
)
ITEMS = Table(
    "funnel_items",
    (("item_id", "TEXT"), ("pipeline", "TEXT"), ("customer_id", "TEXT"), ("campaign_id", "TEXT"),
     ("region", "TEXT"), ("industry", "TEXT"), ("channel", "TEXT"), ("opened_at", "BIGINT"),
     ("stage", "TEXT"), ("prev_stage", "TEXT"), ("stage_seq", "INTEGER"), ("stage_entered_at", "BIGINT"),
     ("owner", "TEXT"), ("amount_cents", "BIGINT"), ("version_seq", "INTEGER"), ("version_from", "BIGINT"),
     ("furthest", "TEXT")),
    ("item_id",),
)
INTERVALS = Table(
    "funnel_intervals",
    (("item_id", "TEXT"), ("seq", "INTEGER"), ("pipeline", "TEXT"), ("stage", "TEXT"), ("prev_stage", "TEXT"),
     ("entered_at", "BIGINT"), ("left_at", "BIGINT"), ("length", "BIGINT")),
    ("item_id", "seq"),
    indexes=(("pipeline", "entered_at"), ("pipeline", "stage", "left_at"), ("pipeline", "length")),
)
VERSIONS = Table(
    "funnel_versions",
    (("item_id", "TEXT"), ("seq", "INTEGER"), ("owner", "TEXT"), ("amount_cents", "BIGINT"),
     ("valid_from", "BIGINT"), ("valid_to", "BIGINT")),
    ("item_id", "seq"),
)


class FunnelReadModel(ReadModel):
    """Stage intervals of every pipeline item (deals, leads for marketing, tickets for service) and
    the pre-summed tallies of their funnels."""

    name = "funnel"
    tables = (CUSTOMERS, ITEMS, INTERVALS, VERSIONS, *TALLY_TABLES)

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return {**{event_class: self._handle for event_class in FUNNEL_EVENTS},
                Pipeline.Defined: _defined, Pipeline.StageInserted: _stage_inserted}

    def prefetch(self, events: list[Any], rows: Rows) -> None:
        steps = [step for event in events for step in funnel_steps(event)]
        rows.prefetch(ITEMS, [(str(s.item_id),) for s in steps if not isinstance(s, Profile)])
        rows.prefetch(CUSTOMERS, [(str(s.customer_id),) for s in steps if isinstance(s, Enter) and s.customer_id])

    def _handle(self, event: Any, rows: Rows) -> None:
        at, seq = micros(event.occurred_at), event.originator_version
        change: Change = {}
        item = None
        for step in funnel_steps(event):
            if isinstance(step, Profile):
                rows.put(CUSTOMERS, {"customer_id": str(step.customer_id), "region": step.region,
                                     "industry": step.industry, "channel": step.channel})
            elif isinstance(step, Enter):
                item = _enter(step, at, seq, rows, change)
            elif isinstance(step, Move):
                item = _move(step, at, seq, rows, change)
            else:
                item = _revise(step, at, seq, rows, change)
        if item is not None:
            record(change, item, seq, at, rows)


def _defined(event: Pipeline.Defined, rows: Rows) -> None:
    define(event.originator_id, event.key, [stage["key"] for stage in event.stages], rows)


def _stage_inserted(event: Pipeline.StageInserted, rows: Rows) -> None:
    insert_stage(event.originator_id, event.stage, event.position, rows)


def _enter(step: Enter, at: int, seq: int, rows: Rows, change: Change) -> dict[str, Any]:
    customer = rows.get(CUSTOMERS, str(step.customer_id)) if step.customer_id else None
    region, industry, channel = step.profile or (
        (customer["region"], customer["industry"], customer["channel"]) if customer else (None, None, None))
    item = {
        "item_id": str(step.item_id), "pipeline": step.pipeline,
        "customer_id": str(step.customer_id) if step.customer_id else None,
        "campaign_id": str(step.campaign_id) if step.campaign_id else None,
        "region": region, "industry": industry, "channel": channel, "opened_at": at,
        "stage": step.stage, "prev_stage": None, "stage_seq": seq, "stage_entered_at": at,
        "owner": step.owner, "amount_cents": step.amount_cents, "version_seq": seq, "version_from": at,
        "furthest": None,
    }
    arrived(change, item, levels_of(step.pipeline, rows))
    rows.put(ITEMS, item)
    rows.put(INTERVALS, _interval(item, left_at=None))
    rows.put(VERSIONS, _version(item, valid_to=None))
    return item


def _move(step: Move, at: int, seq: int, rows: Rows, change: Change) -> dict[str, Any]:
    item = _item(step.item_id, rows)
    if item["stage"] == step.stage or (step.only_from and item["stage"] not in step.only_from):
        return item
    left(change, item, at)
    rows.put(INTERVALS, _interval(item, left_at=at))
    item.update(prev_stage=item["stage"], stage=step.stage, stage_seq=seq, stage_entered_at=at)
    arrived(change, item, levels_of(item["pipeline"], rows))
    rows.put(ITEMS, item)
    rows.put(INTERVALS, _interval(item, left_at=None))
    return item


def _revise(step: Revise, at: int, seq: int, rows: Rows, change: Change) -> dict[str, Any]:
    item = _item(step.item_id, rows)
    changes = {k: v for k, v in (("owner", step.owner), ("amount_cents", step.amount_cents)) if v is not None}
    if all(item[k] == v for k, v in changes.items()):
        return item
    if step.amount_cents is not None:
        revalued(change, item, step.amount_cents)
    rows.put(VERSIONS, _version(item, valid_to=at))
    item.update(changes, version_seq=seq, version_from=at)
    rows.put(ITEMS, item)
    rows.put(VERSIONS, _version(item, valid_to=None))
    return item


def _item(item_id: UUID, rows: Rows) -> dict[str, Any]:
    item = rows.get(ITEMS, str(item_id))
    assert item is not None, f"{item_id} changed before it entered its pipeline"
    return item


def _interval(item: dict[str, Any], left_at: int | None) -> dict[str, Any]:
    return {"item_id": item["item_id"], "seq": item["stage_seq"], "pipeline": item["pipeline"],
            "stage": item["stage"], "prev_stage": item["prev_stage"], "entered_at": item["stage_entered_at"],
            "left_at": left_at, "length": None if left_at is None else left_at - item["stage_entered_at"]}


def _version(item: dict[str, Any], valid_to: int | None) -> dict[str, Any]:
    return {"item_id": item["item_id"], "seq": item["version_seq"], "owner": item["owner"],
            "amount_cents": item["amount_cents"], "valid_from": item["version_from"], "valid_to": valid_to}


@dataclass(frozen=True)
class FlowRow:
    stage: str
    entered: int
    advanced: int
    lost: int


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
               filters: FunnelFilters = FunnelFilters(), stuck_days: float = 30.0) -> FunnelReport:
        """The funnel at `as_of`: from the tallies when unfiltered, else by scanning the intervals."""
        t = micros(as_of)
        if filters == FunnelFilters():
            facts = tallied_facts(self.store, pipeline, stages, t)
        else:
            facts = self.scanned_facts(pipeline, stages, t, filters)
        facts.stuck = self._stuck(pipeline, stages, t, filters, int(stuck_days * DAY_MICROS))
        return build_report(pipeline, stages, as_of, facts)

    def scanned_facts(self, pipeline: str, stages: list[tuple[str, str]], t: int,
                      filters: FunnelFilters = FunnelFilters()) -> FunnelFacts:
        """The facts (but stuck items) from every interval begun by `t`: the path filters need."""
        scope, params = self._scope(pipeline, t, filters)
        covering = " AND (i.left_at IS NULL OR i.left_at > ?)"
        open_stages = [key for key, _ in stages]
        in_open = f" AND i.stage IN ({', '.join('?' * len(open_stages))})"
        facts = FunnelFacts()
        for stage, count, value in self.store.query(
            f"SELECT i.stage, COUNT(*), SUM(v.amount_cents) {scope}{covering} GROUP BY i.stage", [*params, t]
        ):
            facts.in_stage[stage] = (count, int(value))
        level = "CASE i.stage " + " ".join("WHEN ? THEN ?" for _ in range(len(stages) + 1)) + " END"
        level_params = [p for i, key in enumerate([*open_stages, WON]) for p in (key, i)]
        for furthest, count in self.store.query(
            f"SELECT furthest, COUNT(*) FROM (SELECT i.item_id, MAX({level}) AS furthest {scope} "
            "GROUP BY i.item_id) reached WHERE furthest IS NOT NULL GROUP BY furthest", [*level_params, *params]
        ):
            facts.furthest[furthest] = count
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
        select = (f"SELECT i.item_id, i.stage, v.owner, v.amount_cents, i.entered_at {scope} "
                  f"AND i.stage IN ({', '.join('?' * len(open_stages))}) AND i.entered_at < ? AND ")
        head = [*params, *open_stages, t - threshold]
        return [
            StuckItem(UUID(item_id), stage, owner, amount, (t - entered) / DAY_MICROS)
            for item_id, stage, owner, amount, entered in self.store.query(
                f"{select}i.left_at IS NULL UNION ALL {select}i.length > ? AND i.left_at > ?",
                [*head, *head, threshold, t],
            )
        ]

    def flow(self, pipeline: str, stages: list[tuple[str, str]], start: datetime, end: datetime,
             filters: FunnelFilters = FunnelFilters()) -> list[FlowRow]:
        """Per stage, in [start, end): items that entered it, advanced out of it, and were lost from it."""
        t1, t2 = micros(start), micros(end)
        scope, params = self._scope(pipeline, t2, filters)
        order = {key: i for i, (key, _) in enumerate(stages)}
        order[WON] = len(stages)
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
