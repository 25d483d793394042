"""The replay path as a service: fold the whole log up to an instant, from scratch, and report a funnel."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.funnel_rules import STUCK_DAYS
from projections.funnel import FUNNEL_EVENTS, FunnelFilters, FunnelReplay, FunnelReport
from projections.segments import SegmentsReadModel, tier_members_sql
from services.application import CrmApplication
from services.storage.read_model_store import ReadModelStore
from services.projection_runtime.replay import replay_until

FUNNEL_TOPICS = [get_topic(cls) for cls in FUNNEL_EVENTS]


def replay_funnel(app: CrmApplication, pipeline: str, as_of: datetime, filters: FunnelFilters = FunnelFilters(),
                  stuck_days: float = STUCK_DAYS) -> FunnelReport:
    """The funnel folded from scratch; a segment filter takes its members from the segments replayed to T."""
    replay = FunnelReplay(as_of)
    for _, event in app.read_log(topics=FUNNEL_TOPICS):
        replay.handle(event)
    members = None
    if filters.segment is not None:
        store = replay_until(app, [SegmentsReadModel()], as_of)
        members = segment_members(store, filters.segment, as_of)
        store.close()
    return replay.report(pipeline, stages_of(app, pipeline), filters, stuck_days, members)


def segment_members(store: ReadModelStore, tier: str, as_of: datetime) -> frozenset[UUID]:
    sql, params = tier_members_sql(tier, as_of)
    return frozenset(UUID(customer_id) for (customer_id,) in store.query(sql, params))


def stages_of(app: CrmApplication, pipeline: str) -> list[tuple[str, str]]:
    return [(s["key"], s["label"]) for s in app.pipeline(pipeline).stages]
