"""The funnel read model: per-deal stage intervals, and funnel reports as of any instant.

A deal's history becomes intervals `[entered_at, left_at)` in business time, one per stay in a
stage (won and lost are terminal stages). "The funnel as of T" is then a filter on intervals:
a deal is in stage S at T when `entered_at <= T < left_at`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import Any
from uuid import UUID

from domain.deal import Deal
from domain.pipeline import LOST, WON

DAY_SECONDS = 86400.0


@dataclass
class StageInterval:
    deal_id: UUID
    pipeline: str
    stage: str
    entered_at: datetime
    left_at: datetime | None = None

    def covers(self, instant: datetime) -> bool:
        return self.entered_at <= instant and (self.left_at is None or instant < self.left_at)


class StageIntervals:
    """Folds deal events, in log order, into stage intervals."""

    def __init__(self) -> None:
        self.intervals: list[StageInterval] = []
        self._current: dict[UUID, StageInterval] = {}

    def handle(self, event: Any) -> None:
        if isinstance(event, Deal.Opened):
            self._enter(event.originator_id, event.pipeline, event.stage, event.occurred_at)
        elif isinstance(event, Deal.StageChanged):
            self._move(event.originator_id, event.to_stage, event.occurred_at)
        elif isinstance(event, Deal.Won):
            self._move(event.originator_id, WON, event.occurred_at)
        elif isinstance(event, Deal.Lost):
            self._move(event.originator_id, LOST, event.occurred_at)
        elif isinstance(event, Deal.Reopened):
            self._move(event.originator_id, event.stage, event.occurred_at)

    def _enter(self, deal_id: UUID, pipeline: str, stage: str, at: datetime) -> None:
        interval = StageInterval(deal_id, pipeline, stage, at)
        self.intervals.append(interval)
        self._current[deal_id] = interval

    def _move(self, deal_id: UUID, stage: str, at: datetime) -> None:
        current = self._current[deal_id]
        current.left_at = at
        self._enter(deal_id, current.pipeline, stage, at)


@dataclass(frozen=True)
class StageRow:
    stage: str
    label: str
    in_stage: int
    reached: int
    conversion_to_next: float | None
    median_days: float | None


@dataclass(frozen=True)
class FunnelReport:
    pipeline: str
    as_of: datetime
    rows: list[StageRow]
    won: int
    lost: int

    @property
    def open_deals(self) -> int:
        return sum(row.in_stage for row in self.rows)

    @property
    def win_rate(self) -> float | None:
        closed = self.won + self.lost
        return self.won / closed if closed else None


def funnel_as_of(
    intervals: Iterable[StageInterval], pipeline: str, stages: Sequence[tuple[str, str]], as_of: datetime
) -> FunnelReport:
    """The funnel of `pipeline` as it stood at `as_of` (business time).

    - in_stage: deals in the stage at that instant;
    - reached: deals that had got at least as far as the stage by then (won counts as past the last);
    - conversion_to_next: reached(next) / reached(this);
    - median_days: median length of the stays in the stage that had ended by then.
    """
    order = {key: i for i, (key, _) in enumerate(stages)}
    order[WON] = len(stages)
    in_stage = {key: 0 for key, _ in stages}
    furthest: dict[UUID, int] = {}
    stays: dict[str, list[float]] = {key: [] for key, _ in stages}
    won = lost = 0
    for interval in intervals:
        if interval.pipeline != pipeline or interval.entered_at > as_of:
            continue
        if interval.stage in order:
            furthest[interval.deal_id] = max(furthest.get(interval.deal_id, -1), order[interval.stage])
        if interval.covers(as_of):
            if interval.stage == WON:
                won += 1
            elif interval.stage == LOST:
                lost += 1
            elif interval.stage in in_stage:
                in_stage[interval.stage] += 1
        elif interval.stage in stays and interval.left_at is not None:
            stays[interval.stage].append((interval.left_at - interval.entered_at).total_seconds() / DAY_SECONDS)
    reached = [sum(1 for f in furthest.values() if f >= i) for i in range(len(stages) + 1)]
    rows = []
    for i, (key, label) in enumerate(stages):
        rows.append(
            StageRow(
                stage=key,
                label=label,
                in_stage=in_stage[key],
                reached=reached[i],
                conversion_to_next=reached[i + 1] / reached[i] if reached[i] else None,
                median_days=median(stays[key]) if stays[key] else None,
            )
        )
    return FunnelReport(pipeline, as_of, rows, won, lost)
