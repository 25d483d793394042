"""The replay path: fold the log from scratch up to an instant and read the funnel off the deals' state.

It shares no state or SQL with the read model, so holding the two against each other checks both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.customer import Customer
from domain.deal import Deal
from domain.pipeline import LOST, WON
from projections.funnel_report import DAY_MICROS, FunnelFacts, FunnelFilters, FunnelReport, StuckDeal, build_report
from projections.tables import cents, micros


@dataclass
class _DealAtT:
    pipeline: str
    customer_id: UUID
    campaign_id: UUID | None
    opened_at: int
    stage: str
    entered_at: int
    owner: str
    amount_cents: int
    visited: set[str] = field(default_factory=set)
    stays: list[tuple[str, int]] = field(default_factory=list)


class FunnelReplay:
    """Deals' state at one instant: events with business time after it are ignored."""

    def __init__(self, as_of: datetime) -> None:
        self.as_of = as_of
        self._t = micros(as_of)
        self._customers: dict[UUID, tuple[str, str, str]] = {}
        self._deals: dict[UUID, _DealAtT] = {}

    def handle(self, event: Any) -> None:
        if isinstance(event, Customer.Registered):  # who a customer is does not change over time
            self._customers[event.originator_id] = (event.region, event.industry, event.channel)
            return
        if not isinstance(event, Deal.Event) or micros(event.occurred_at) > self._t:
            return
        at = micros(event.occurred_at)
        if isinstance(event, Deal.Opened):
            self._deals[event.originator_id] = _DealAtT(
                event.pipeline, event.customer_id, event.campaign_id, at, event.stage, at, event.owner,
                cents(event.amount), {event.stage},
            )
            return
        deal = self._deals[event.originator_id]
        if isinstance(event, Deal.StageChanged):
            self._enter(deal, event.to_stage, at)
        elif isinstance(event, Deal.Won):
            self._enter(deal, WON, at)
        elif isinstance(event, Deal.Lost):
            self._enter(deal, LOST, at)
        elif isinstance(event, Deal.Reopened):
            self._enter(deal, event.stage, at)
        elif isinstance(event, Deal.AmountChanged):
            deal.amount_cents = cents(event.new_amount)
        elif isinstance(event, Deal.OwnerChanged):
            deal.owner = event.new_owner

    @staticmethod
    def _enter(deal: _DealAtT, stage: str, at: int) -> None:
        deal.stays.append((deal.stage, at - deal.entered_at))
        deal.stage, deal.entered_at = stage, at
        deal.visited.add(stage)

    def report(self, pipeline: str, stages: list[tuple[str, str]], filters: FunnelFilters = FunnelFilters(),
               stuck_days: float = 30.0) -> FunnelReport:
        order = {key: i for i, (key, _) in enumerate(stages)}
        order[WON] = len(stages)
        threshold = int(stuck_days * DAY_MICROS)
        facts = FunnelFacts()
        for deal_id, deal in self._deals.items():
            region, industry, channel = self._customers.get(deal.customer_id, (None, None, None))
            if deal.pipeline != pipeline or not filters.matches(deal.owner, region, industry, channel,
                                                                  deal.campaign_id):
                continue
            count, value = facts.in_stage.get(deal.stage, (0, 0))
            facts.in_stage[deal.stage] = (count + 1, value + deal.amount_cents)
            furthest = max((order[s] for s in deal.visited if s in order), default=None)
            if furthest is not None:
                facts.furthest[furthest] = facts.furthest.get(furthest, 0) + 1
            for stage, length in deal.stays:
                if stage in order and stage != WON:
                    facts.stays.setdefault(stage, []).append(length)
            if deal.stage == WON:
                facts.won_cycles.append(deal.entered_at - deal.opened_at)
            elif deal.stage in order and deal.entered_at < self._t - threshold:
                facts.stuck.append(StuckDeal(deal_id, deal.stage, deal.owner, deal.amount_cents,
                                             (self._t - deal.entered_at) / DAY_MICROS))
        return build_report(pipeline, stages, self.as_of, facts)
