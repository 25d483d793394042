"""The funnel as a service: folded from the whole log up to an instant (the replay path), a pipeline's stages, and
which read models an answer from them reads."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.exchange_rates import Conversion, RateInForce
from domain.funnel_rules import STUCK_DAYS
from projections.funnel import FUNNEL_EVENTS, FunnelFilters, FunnelQueries, FunnelReplay, FunnelReport
from projections.rates import RATE_EVENTS
from projections.segments import SegmentsReadModel, tier_members_sql
from services.application import CrmApplication
from services.settings import time_zone_from_environment
from services.storage.read_model_store import ReadModelStore
from services.projection_runtime.replay import replay_until

FUNNEL_TOPICS = [get_topic(cls) for cls in FUNNEL_EVENTS]
RATE_TOPICS = [get_topic(cls) for cls in RATE_EVENTS]


def funnel_queries(store: ReadModelStore) -> FunnelQueries:
    """The funnel's queries over tallies kept in the installation's zone (CRM_TIME_ZONE), which is also their
    periods' default: the read model's fingerprint holds the zone, so tables of another zone are being rebuilt
    (and answer 503 / exit 1 meanwhile) rather than read as this one's."""
    return FunnelQueries(store, time_zone_from_environment())


def conversion_from_log(app: CrmApplication, reporting: str, as_of: datetime) -> Conversion:
    """The rates into `reporting` in force at `as_of`, folded from the log's rate events (as the replay path
    must: no read model): per currency, the figure of its latest date by then, its last correction."""
    latest: dict[str, tuple[date, Decimal]] = {}
    for _, event in app.read_log(topics=RATE_TOPICS):
        if event.quote == reporting and event.occurred_at <= as_of:
            if event.currency not in latest or event.valid_from >= latest[event.currency][0]:
                latest[event.currency] = (event.valid_from, event.rate)
    return Conversion(reporting, {c: RateInForce(rate, day) for c, (day, rate) in latest.items()})


def replay_funnel(app: CrmApplication, pipeline: str, as_of: datetime, filters: FunnelFilters = FunnelFilters(),
                  stuck_days: float = STUCK_DAYS) -> FunnelReport:
    """The funnel folded from scratch, its values converted at the rates in force at `as_of`; a segment
    filter takes its members from the segments replayed to T."""
    replay = FunnelReplay(as_of)
    for _, event in app.read_log(topics=FUNNEL_TOPICS):
        replay.handle(event)
    members = None
    if filters.segment is not None:
        store = replay_until(app, [SegmentsReadModel()], as_of)
        members = segment_members(store, filters.segment, as_of)
        store.close()
    return replay.report(pipeline, stages_of(app, pipeline), filters, stuck_days, members,
                         conversion_from_log(app, app.reporting_currency, as_of))


def segment_members(store: ReadModelStore, tier: str, as_of: datetime) -> frozenset[UUID]:
    sql, params = tier_members_sql(tier, as_of)
    return frozenset(UUID(customer_id) for (customer_id,) in store.query(sql, params))


def funnel_read_models(filters: FunnelFilters, from_log: bool = False) -> list[str]:
    """The read models a funnel answer reads from, whose freshness it reports: the funnel, and the segments
    only to filter by segment (the first funnel after importing 8,800 deals waited 773 s for a segments
    rebuild it did not use, when queries caught up); the rates convert its amounts, the external ids name its
    stuck items by their source's ids; none when the answer is folded from the log."""
    if from_log:
        return []
    needed = ["funnel", "rates", "external_ids"]
    return [*needed, "segments"] if filters.segment is not None else needed


def stages_of(app: CrmApplication, pipeline: str) -> list[tuple[str, str]]:
    return [(s["key"], s["label"]) for s in app.pipeline(pipeline).stages]
