"""The replay path: fold the log from scratch up to an instant and read the funnel off the items' state.

It shares no state or SQL with the read model (only the event → step mapping, the report built from the
facts and the definitions in `domain.funnel_rules`), so holding the two against each other checks both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from domain.exchange_rates import Conversion
from domain.funnel_rules import STUCK_DAYS, stage_levels
from domain.pipeline import LOST, WON
from projections.funnel.report import (DAY_MICROS, NO_ITEMS, FunnelFacts, FunnelFilters, FunnelReport, StuckItem,
                                       build_report)
from projections.funnel.steps import NO_ATTRIBUTES, Enter, ItemAttributes, Move, Profile, Revise, funnel_steps
from projections.tables import micros


class Stay(NamedTuple):
    """An ended stay of an item in a stage."""

    stage: str
    length_us: int


@dataclass
class _ItemAtT:
    enter: Enter
    opened_at: int
    stage: str
    entered_at: int
    owner: str
    amount_cents: int
    visited: set[str] = field(default_factory=set)
    stays: list[Stay] = field(default_factory=list)


class FunnelReplay:
    """Items' state at one instant: events with business time after it are ignored."""

    def __init__(self, as_of: datetime) -> None:
        self.as_of = as_of
        self._t = micros(as_of)
        self._profiles: dict[UUID, ItemAttributes] = {}
        self._items: dict[UUID, _ItemAtT] = {}

    def handle(self, event: Any) -> None:
        at = micros(event.occurred_at)
        for step in funnel_steps(event):
            if isinstance(step, Profile):  # who a customer is does not change over time
                self._profiles[step.customer_id] = step.attributes
            elif at > self._t:
                return
            elif isinstance(step, Enter):
                self._items[step.item_id] = _ItemAtT(step, at, step.stage, at, step.owner, step.amount_cents,
                                                     {step.stage})
            elif isinstance(step, Move):
                self._move(self._items[step.item_id], step, at)
            elif isinstance(step, Revise):
                item = self._items[step.item_id]
                item.owner = item.owner if step.owner is None else step.owner
                item.amount_cents = item.amount_cents if step.amount_cents is None else step.amount_cents

    @staticmethod
    def _move(item: _ItemAtT, step: Move, at: int) -> None:
        if item.stage == step.stage or (step.only_from and item.stage not in step.only_from):
            return
        item.stays.append(Stay(item.stage, at - item.entered_at))
        item.stage, item.entered_at = step.stage, at
        item.visited.add(step.stage)

    def _profile(self, item: _ItemAtT) -> ItemAttributes:
        if item.enter.profile:
            return item.enter.profile
        return self._profiles.get(item.enter.customer_id, NO_ATTRIBUTES)  # type: ignore[arg-type]

    def report(self, pipeline: str, stages: list[tuple[str, str]], filters: FunnelFilters = FunnelFilters(),
               stuck_days: float = STUCK_DAYS, segment_members: frozenset[UUID] | None = None,
               money: Conversion = Conversion()) -> FunnelReport:
        """The funnel at the instant; a segment filter needs the ids of the segment's members then."""
        if filters.segment is not None and segment_members is None:
            raise ValueError("a segment filter needs segment_members")
        order = stage_levels([key for key, _ in stages])
        threshold = int(stuck_days * DAY_MICROS)
        facts = FunnelFacts()
        for item_id, item in self._items.items():
            if item.enter.pipeline != pipeline or not filters.matches(item.owner, *self._profile(item),
                                                                       item.enter.campaign_id):
                continue
            if segment_members is not None and item.enter.customer_id not in segment_members:
                continue
            held = facts.in_stage.get(item.stage, NO_ITEMS)
            facts.in_stage[item.stage] = held.plus(1, item.enter.currency, item.amount_cents)
            furthest = max((order[s] for s in item.visited if s in order), default=None)
            if furthest is not None:
                facts.furthest[furthest] = facts.furthest.get(furthest, 0) + 1
                if item.stage == LOST:
                    facts.lost_furthest[furthest] = facts.lost_furthest.get(furthest, 0) + 1
            for stage, length in item.stays:
                if stage in order and stage != WON:
                    facts.add_stay(stage, length)
            if item.stage == WON:
                facts.won_cycle_total += item.entered_at - item.opened_at
            elif item.stage in order and item.entered_at < self._t - threshold:
                facts.stuck.append(StuckItem(item_id, item.stage, item.owner, item.amount_cents,
                                             (self._t - item.entered_at) / DAY_MICROS, item.enter.currency))
        return build_report(pipeline, stages, self.as_of, facts, money)
