"""The replay path as a service: fold the whole log up to an instant, from scratch, and report a funnel."""

from __future__ import annotations

from datetime import datetime

from eventsourcing.utils import get_topic

from projections.funnel_replay import FunnelReplay
from projections.funnel_report import FunnelFilters, FunnelReport
from services.application import CrmApplication

from projections.funnel_steps import FUNNEL_EVENTS

FUNNEL_TOPICS = [get_topic(cls) for cls in FUNNEL_EVENTS]


def replay_funnel(app: CrmApplication, pipeline: str, as_of: datetime, filters: FunnelFilters = FunnelFilters(),
                  stuck_days: float = 30.0) -> FunnelReport:
    replay = FunnelReplay(as_of)
    for _, event in app.read_log(topics=FUNNEL_TOPICS):
        replay.handle(event)
    return replay.report(pipeline, stages_of(app, pipeline), filters, stuck_days)


def stages_of(app: CrmApplication, pipeline: str) -> list[tuple[str, str]]:
    return [(s["key"], s["label"]) for s in app.pipeline(pipeline).stages]
