"""The read models this CRM maintains, and how to run and ask them on the configured database."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from domain.pipeline import DEFAULT_PIPELINES
from projections.read_model import ReadModel
from projections.attribution import AttributionQueries, AttributionReadModel
from projections.campaigns import CampaignQueries, CampaignsReadModel
from projections.external_ids import ExternalIdQueries, ExternalIdsReadModel
from projections.forecast import ForecastQueries, ForecastReadModel
from projections.funnel import FunnelReadModel
from projections.inspection import InspectionQueries, InspectionReadModel
from projections.rates import RateQueries, RatesReadModel
from projections.reminders import ReminderQueries, RemindersReadModel
from projections.segments import SegmentQueries, SegmentsReadModel
from projections.tickets import TicketQueries, TicketsReadModel
from projections.timeline import TimelineQueries, TimelineReadModel
from projections.variants import VariantQueries, VariantsReadModel
from services.application import CrmApplication
from services.projection_runtime.funnel_as_of import funnel_queries, stages_of
from services.projection_runtime.model_settings import configured
from services.projection_runtime.projector import Projector
from services.projection_runtime.schema_change import changed_schemas
from services.settings import time_zone_from_environment
from services.storage.read_model_store import ReadModelStore
from services.storage.schema_lock import advisory_lock

READ_MODELS: dict[str, type[ReadModel]] = {
    model.name: model
    for model in (FunnelReadModel, SegmentsReadModel, TicketsReadModel, CampaignsReadModel, TimelineReadModel,
                  ExternalIdsReadModel, RatesReadModel, RemindersReadModel, ForecastReadModel,
                  InspectionReadModel, VariantsReadModel, AttributionReadModel)
}


class UnknownReadModel(ValueError):
    """A read model name that does not exist."""


def projector_for(app: CrmApplication, store: ReadModelStore, names: Sequence[str] = ()) -> Projector:
    """A projector over the named read models (all of them when none are named)."""
    unknown = [n for n in names if n not in READ_MODELS]
    if unknown:
        raise UnknownReadModel(f"unknown read model(s) {', '.join(unknown)}; known: {', '.join(READ_MODELS)}")
    return Projector(app, store, [configured(READ_MODELS[n]) for n in (names or READ_MODELS)])


def set_up_read_models(app: CrmApplication, store: ReadModelStore, keep_changed: bool = False) -> list[str]:
    """Create the read models' missing tables (and start new ones at position 0) when a server starts, so
    that its queries only ever read: before, the first query of each read model created them. `keep_changed`:
    read models whose tables another version made are left as they are (not dropped) and their names returned:
    the server's background projector builds them online (schema_change)."""
    with advisory_lock(app.database):  # processes starting together create tables in turn
        changed = changed_schemas(store, [configured(model) for model in READ_MODELS.values()]) if keep_changed else []
        Projector(app, store, [configured(model) for name, model in READ_MODELS.items() if name not in changed])
    return changed


def _funnel_summary(app: CrmApplication, store: ReadModelStore, as_of: datetime) -> dict[str, Any]:
    queries, money = funnel_queries(store), RateQueries(store).conversion(app.reporting_currency, as_of)
    return {key: queries.report(key, stages_of(app, key), as_of, money=money).to_dict() for key in DEFAULT_PIPELINES}


def _forecast_summary(app: CrmApplication, store: ReadModelStore, as_of: datetime) -> dict[str, Any]:
    return ForecastQueries(store).summary(as_of, time_zone_from_environment(),
                                          RateQueries(store).conversion(app.reporting_currency, as_of))


SUMMARIES: dict[str, Callable[[CrmApplication, ReadModelStore, datetime], dict[str, Any]]] = {
    "funnel": _funnel_summary,
    "segments": lambda app, store, as_of: SegmentQueries(store).summary(as_of),
    "tickets": lambda app, store, as_of: TicketQueries(store, app.keys.unseal_all_marks).summary(as_of),
    "campaigns": lambda app, store, as_of: CampaignQueries(store).summary(
        as_of, RateQueries(store).conversion(app.reporting_currency, as_of)),
    "timeline": lambda app, store, as_of: TimelineQueries(store, app.keys.unseal_marks).summary(as_of),
    "external_ids": lambda app, store, as_of: ExternalIdQueries(store).summary(as_of),
    "rates": lambda app, store, as_of: {c: (str(r.rate), r.valid_from.isoformat()) for c, r in
                                        RateQueries(store).in_force(app.reporting_currency, as_of).items()},
    "reminders": lambda app, store, as_of: ReminderQueries(store, app.keys.unseal_all_marks).summary(as_of),
    "forecast": _forecast_summary,
    "inspection": lambda app, store, as_of: InspectionQueries(store, app.keys.unseal_all_marks).summary(
        as_of, time_zone_from_environment(), RateQueries(store).conversion(app.reporting_currency, as_of)),
    "variants": lambda app, store, as_of: VariantQueries(store).summary(
        as_of, RateQueries(store).conversion(app.reporting_currency, as_of)),
    "attribution": lambda app, store, as_of: AttributionQueries(store).summary(
        as_of, time_zone_from_environment(), RateQueries(store).conversion(app.reporting_currency, as_of)),
}


def summaries(app: CrmApplication, store: ReadModelStore, as_of: datetime) -> dict[str, dict[str, Any]]:
    """Everything every read model can answer as of an instant (for equivalence checks and exports)."""
    return {name: summary(app, store, as_of) for name, summary in SUMMARIES.items()}
