"""The replay path: fold the log's deal events from scratch into stage intervals and report a funnel."""

from __future__ import annotations

from datetime import datetime

from eventsourcing.utils import get_topic

from domain.deal import Deal
from projections.funnel import FunnelReport, StageIntervals, funnel_as_of
from services.application import CrmApplication

DEAL_FLOW_TOPICS = [get_topic(cls) for cls in (Deal.Opened, Deal.StageChanged, Deal.Won, Deal.Lost, Deal.Reopened)]


def replay_stage_intervals(app: CrmApplication) -> StageIntervals:
    intervals = StageIntervals()
    for _, event in app.read_log(topics=DEAL_FLOW_TOPICS):
        intervals.handle(event)
    return intervals


def replay_funnels(app: CrmApplication, pipeline: str, instants: list[datetime]) -> list[FunnelReport]:
    """The funnel of `pipeline` at each instant, from one pass over the log."""
    stages = [(s["key"], s["label"]) for s in app.pipeline(pipeline).stages]
    intervals = replay_stage_intervals(app).intervals
    return [funnel_as_of(intervals, pipeline, stages, instant) for instant in instants]
