"""The funnel read model: per-deal stage intervals and owner/amount versions, in business time.

A deal's life becomes stage intervals `[entered_at, left_at)` (won and lost are terminal stages) and
versions of its owner and amount `[valid_from, valid_to)`. "The funnel as of T" is then a set of
indexed range queries (`entered_at <= T < left_at`) rather than a replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.customer import Customer
from domain.deal import Deal
from domain.pipeline import LOST, WON
from projections.base import ReadModel, Rows
from projections.funnel_report import (
    DAY_MICROS,
    FunnelFacts,
    FunnelFilters,
    FunnelReport,
    StuckDeal,
    build_report,
)
from projections.tables import Table, cents, micros
from services.readstore import ReadStore

CUSTOMERS = Table(
    "funnel_customers",
    (("customer_id", "TEXT"), ("region", "TEXT"), ("industry", "TEXT"), ("channel", "TEXT")),
    ("customer_id",),
)
DEALS = Table(
    "funnel_deals",
    (("deal_id", "TEXT"), ("pipeline", "TEXT"), ("customer_id", "TEXT"), ("campaign_id", "TEXT"),
     ("region", "TEXT"), ("industry", "TEXT"), ("channel", "TEXT"), ("opened_at", "BIGINT"),
     ("stage", "TEXT"), ("prev_stage", "TEXT"), ("stage_seq", "INTEGER"), ("stage_entered_at", "BIGINT"),
     ("owner", "TEXT"), ("amount_cents", "BIGINT"), ("version_seq", "INTEGER"), ("version_from", "BIGINT")),
    ("deal_id",),
)
INTERVALS = Table(
    "funnel_intervals",
    (("deal_id", "TEXT"), ("seq", "INTEGER"), ("pipeline", "TEXT"), ("stage", "TEXT"), ("prev_stage", "TEXT"),
     ("entered_at", "BIGINT"), ("left_at", "BIGINT")),
    ("deal_id", "seq"),
    indexes=(("pipeline", "entered_at"), ("pipeline", "stage", "left_at")),
)
VERSIONS = Table(
    "funnel_versions",
    (("deal_id", "TEXT"), ("seq", "INTEGER"), ("owner", "TEXT"), ("amount_cents", "BIGINT"),
     ("valid_from", "BIGINT"), ("valid_to", "BIGINT")),
    ("deal_id", "seq"),
)


class FunnelReadModel(ReadModel):
    name = "funnel"
    tables = (CUSTOMERS, DEALS, INTERVALS, VERSIONS)

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return {
            Customer.Registered: self._registered,
            Deal.Opened: self._opened,
            Deal.StageChanged: lambda e, rows: self._move(e, e.to_stage, rows),
            Deal.Won: lambda e, rows: self._move(e, WON, rows),
            Deal.Lost: lambda e, rows: self._move(e, LOST, rows),
            Deal.Reopened: lambda e, rows: self._move(e, e.stage, rows),
            Deal.AmountChanged: lambda e, rows: self._revise(e, rows, amount_cents=cents(e.new_amount)),
            Deal.OwnerChanged: lambda e, rows: self._revise(e, rows, owner=e.new_owner),
        }

    def prefetch(self, events: list[Any], rows: Rows) -> None:
        rows.prefetch(DEALS, [(str(e.originator_id),) for e in events if isinstance(e, Deal.Event)])
        rows.prefetch(CUSTOMERS, [(str(e.customer_id),) for e in events if isinstance(e, Deal.Opened)])

    @staticmethod
    def _registered(event: Customer.Registered, rows: Rows) -> None:
        rows.put(CUSTOMERS, {"customer_id": str(event.originator_id), "region": event.region,
                             "industry": event.industry, "channel": event.channel})

    @staticmethod
    def _opened(event: Deal.Opened, rows: Rows) -> None:
        deal_id, at = str(event.originator_id), micros(event.occurred_at)
        customer = rows.get(CUSTOMERS, str(event.customer_id)) or {}
        deal = {
            "deal_id": deal_id, "pipeline": event.pipeline, "customer_id": str(event.customer_id),
            "campaign_id": str(event.campaign_id) if event.campaign_id else None,
            "region": customer.get("region"), "industry": customer.get("industry"),
            "channel": customer.get("channel"), "opened_at": at,
            "stage": event.stage, "prev_stage": None, "stage_seq": event.originator_version, "stage_entered_at": at,
            "owner": event.owner, "amount_cents": cents(event.amount),
            "version_seq": event.originator_version, "version_from": at,
        }
        rows.put(DEALS, deal)
        rows.put(INTERVALS, _interval(deal, left_at=None))
        rows.put(VERSIONS, _version(deal, valid_to=None))

    @staticmethod
    def _move(event: Deal.Event, stage: str, rows: Rows) -> None:
        deal = rows.get(DEALS, str(event.originator_id))
        assert deal is not None, f"deal {event.originator_id} moved before it was opened"
        at = micros(event.occurred_at)
        rows.put(INTERVALS, _interval(deal, left_at=at))
        deal.update(prev_stage=deal["stage"], stage=stage, stage_seq=event.originator_version, stage_entered_at=at)
        rows.put(DEALS, deal)
        rows.put(INTERVALS, _interval(deal, left_at=None))

    @staticmethod
    def _revise(event: Deal.Event, rows: Rows, **changes: Any) -> None:
        deal = rows.get(DEALS, str(event.originator_id))
        assert deal is not None, f"deal {event.originator_id} revised before it was opened"
        at = micros(event.occurred_at)
        rows.put(VERSIONS, _version(deal, valid_to=at))
        deal.update(changes, version_seq=event.originator_version, version_from=at)
        rows.put(DEALS, deal)
        rows.put(VERSIONS, _version(deal, valid_to=None))


def _interval(deal: dict[str, Any], left_at: int | None) -> dict[str, Any]:
    return {"deal_id": deal["deal_id"], "seq": deal["stage_seq"], "pipeline": deal["pipeline"],
            "stage": deal["stage"], "prev_stage": deal["prev_stage"], "entered_at": deal["stage_entered_at"],
            "left_at": left_at}


def _version(deal: dict[str, Any], valid_to: int | None) -> dict[str, Any]:
    return {"deal_id": deal["deal_id"], "seq": deal["version_seq"], "owner": deal["owner"],
            "amount_cents": deal["amount_cents"], "valid_from": deal["version_from"], "valid_to": valid_to}


@dataclass(frozen=True)
class FlowRow:
    stage: str
    entered: int
    advanced: int
    lost: int


class FunnelQueries:
    """Answers funnel questions from the read model's tables."""

    def __init__(self, store: ReadStore) -> None:
        self.store = store

    def _scope(self, pipeline: str, as_of_us: int, filters: FunnelFilters) -> tuple[str, list[Any]]:
        """FROM/WHERE for the intervals of `pipeline` begun by `as_of`, with deal attributes as of then."""
        sql = ("FROM funnel_intervals i JOIN funnel_deals d ON d.deal_id = i.deal_id "
               "JOIN funnel_versions v ON v.deal_id = i.deal_id AND v.valid_from <= ? "
               "AND (v.valid_to IS NULL OR v.valid_to > ?) WHERE i.pipeline = ? AND i.entered_at <= ?")
        params: list[Any] = [as_of_us, as_of_us, pipeline, as_of_us]
        for column, value in (("v.owner", filters.owner), ("d.region", filters.region),
                              ("d.industry", filters.industry), ("d.channel", filters.channel),
                              ("d.campaign_id", str(filters.campaign_id) if filters.campaign_id else None)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        return sql, params

    def report(self, pipeline: str, stages: list[tuple[str, str]], as_of: datetime,
               filters: FunnelFilters = FunnelFilters(), stuck_days: float = 30.0) -> FunnelReport:
        t = micros(as_of)
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
            f"SELECT furthest, COUNT(*) FROM (SELECT i.deal_id, MAX({level}) AS furthest {scope} "
            "GROUP BY i.deal_id) reached WHERE furthest IS NOT NULL GROUP BY furthest", [*level_params, *params]
        ):
            facts.furthest[furthest] = count
        for stage, length in self.store.query(
            f"SELECT i.stage, i.left_at - i.entered_at {scope} AND i.left_at <= ?{in_open}",
            [*params, t, *open_stages],
        ):
            facts.stays.setdefault(stage, []).append(length)
        facts.won_cycles = [length for (length,) in self.store.query(
            f"SELECT i.entered_at - d.opened_at {scope}{covering} AND i.stage = ?", [*params, t, WON]
        )]
        threshold = int(stuck_days * DAY_MICROS)
        facts.stuck = [
            StuckDeal(UUID(deal_id), stage, owner, amount, (t - entered) / DAY_MICROS)
            for deal_id, stage, owner, amount, entered in self.store.query(
                f"SELECT i.deal_id, i.stage, v.owner, v.amount_cents, i.entered_at {scope}{covering}{in_open} "
                "AND i.entered_at < ?", [*params, t, *open_stages, t - threshold],
            )
        ]
        return build_report(pipeline, stages, as_of, facts)

    def flow(self, pipeline: str, stages: list[tuple[str, str]], start: datetime, end: datetime,
             filters: FunnelFilters = FunnelFilters()) -> list[FlowRow]:
        """Per stage, in [start, end): deals that entered it, advanced out of it, and were lost from it."""
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
