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
from domain.properties import applied
from projections.funnel.report import (DAY_MICROS, NO_ITEMS, FunnelFacts, FunnelFilters, FunnelReport, StuckItem,
                                       build_report)
from projections.funnel.steps import (NO_ATTRIBUTES, Describe, Enter, ItemAttributes, Move, Profile, Revise,
                                      funnel_steps)
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
        self._properties: dict[UUID, dict[str, str]] = {}  # of deals, leads and customers, as of the instant

    def handle(self, event: Any) -> None:
        at = micros(event.occurred_at)
        for step in funnel_steps(event):
            if isinstance(step, Profile):  # who a customer is does not change over time
                self._profiles[step.customer_id] = step.attributes
            elif at > self._t:
                return
            elif isinstance(step, Describe):
                self._properties[step.subject_id] = applied(self._properties.get(step.subject_id, {}), step.changes)
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

    def property_of(self, item: _ItemAtT, name: str) -> str | None:
        """The item's property `name` at the instant, else its customer's, else None (as the read model)."""
        own = self._properties.get(item.enter.customer_id, {}) if item.enter.customer_id else {}
        return self._properties.get(item.enter.item_id, {}).get(name) or own.get(name)

    def value_of(self, item: _ItemAtT, by: str) -> str | None:
        """The item's value of a group-by (`projections.funnel.dimensions.axis`) at the instant."""
        region, industry, channel = self._profile(item)
        built_in = {"owner": item.owner, "region": region, "industry": industry, "channel": channel,
                    "campaign": str(item.enter.campaign_id) if item.enter.campaign_id else None}
        return built_in[by] if by in built_in else self.property_of(item, by)

    def _kept(self, pipeline: str, filters: FunnelFilters,
              segment_members: frozenset[UUID] | None) -> list[tuple[UUID, _ItemAtT]]:
        """The items of `pipeline` the filters keep at the instant."""
        if filters.segment is not None and segment_members is None:
            raise ValueError("a segment filter needs segment_members")
        return [(item_id, item) for item_id, item in self._items.items()
                if item.enter.pipeline == pipeline
                and filters.matches(item.owner, *self._profile(item), item.enter.campaign_id)
                and all(self.property_of(item, name) == value for name, value in filters.properties)
                and (segment_members is None or item.enter.customer_id in segment_members)]

    def report(self, pipeline: str, stages: list[tuple[str, str]], filters: FunnelFilters = FunnelFilters(),
               stuck_days: float = STUCK_DAYS, segment_members: frozenset[UUID] | None = None,
               money: Conversion = Conversion()) -> FunnelReport:
        """The funnel at the instant; a segment filter needs the ids of the segment's members then."""
        recorded = None if filters == FunnelFilters() and segment_members is None else self._losses_recorded(pipeline)
        return self._report(pipeline, stages, self._kept(pipeline, filters, segment_members), stuck_days, money,
                            recorded)

    def grouped(self, pipeline: str, stages: list[tuple[str, str]], by: list[str],
                filters: FunnelFilters = FunnelFilters(), stuck_days: float = STUCK_DAYS,
                segment_members: frozenset[UUID] | None = None,
                money: Conversion = Conversion()) -> dict[tuple[str | None, ...], FunnelReport]:
        """One funnel per combination of the built-in or property dimensions `by` (raw values: no cohorts),
        values converted with `money` as `report`'s."""
        groups: dict[tuple[str | None, ...], list[tuple[UUID, _ItemAtT]]] = {}
        for item_id, item in self._kept(pipeline, filters, segment_members):
            groups.setdefault(tuple(self.value_of(item, name) for name in by), []).append((item_id, item))
        recorded = self._losses_recorded(pipeline)
        return {key: self._report(pipeline, stages, items, stuck_days, money, recorded)
                for key, items in groups.items()}

    def _losses_recorded(self, pipeline: str) -> bool:
        """Whether some item of `pipeline` is lost at the instant (`FunnelQueries.losses_recorded`)."""
        return any(item.stage == LOST for item in self._items.values() if item.enter.pipeline == pipeline)

    def _report(self, pipeline: str, stages: list[tuple[str, str]], items: list[tuple[UUID, _ItemAtT]],
                stuck_days: float, money: Conversion, losses_recorded: bool | None = None) -> FunnelReport:
        order = stage_levels([key for key, _ in stages])
        threshold = int(stuck_days * DAY_MICROS)
        facts = FunnelFacts()
        for item_id, item in items:
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
        return build_report(pipeline, stages, self.as_of, facts, money, losses_recorded)
