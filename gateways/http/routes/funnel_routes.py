"""The funnel read model: a pipeline's funnel as of an instant (or one per group: `?by=owner&cohort=month`),
its flow between two, a comparison, and win rate and cycle per period.

The pattern for every read-model router: depend on `fresh("<model>")` for the store as the projector left
it (its freshness goes out in headers; `?wait_for_position=` reads a client's own write), ask the model's
Queries class, paginate lists with `page`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from domain.funnel_rules import STUCK_DAYS
from domain.properties import require_changes
from domain.segmentation import TIERS
from gateways.http.auth import allow
from gateways.http.deps import WaitForPosition, Zone, crm, read_store
from gateways.http.error_responses import ApiError
from gateways.http.pagination import PageParams, page, page_params
from gateways.http.report_output import CSV_ANSWER, ReportFormat, report_format, report_response
from gateways.report_tables import (funnel_compare_tables, funnel_grouped_tables, funnel_periods_tables,
                                    funnel_tables, single, with_external_ids)
from gateways.http.schemas import ERRORS, NO_NUL, Instant
from gateways.http.record_ids import DESCRIPTION, resolve_text
from projections.external_ids import ExternalIdQueries
from projections.funnel import FunnelFilters, FunnelReport
from projections.funnel.dimensions import GRAINS, GroupedReport
from projections.rates import RateQueries
from services.application import CrmApplication
from services.projection_runtime.funnel_as_of import funnel_queries, funnel_read_models, stages_of
from services.storage.read_model_store import ReadModelStore

router = APIRouter(prefix="/funnel", tags=["funnel"], responses=ERRORS,
                   dependencies=[Depends(allow("funnel:read"))])
Pipeline = Annotated[str, Query(pattern=r"^[a-z][a-z0-9_]{0,39}$", description="sales, marketing, service, …")]
App = Annotated[CrmApplication, Depends(crm)]
Page = Annotated[PageParams, Depends(page_params)]
Format = Annotated[ReportFormat, Depends(report_format)]


def filters(
    request: Request,
    owner: Annotated[str | None, Query(max_length=200, pattern=NO_NUL, description="Owner at the instant.")] = None,
    region: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    industry: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    channel: Annotated[str | None, Query(max_length=200, pattern=NO_NUL,
                                         description="The customer's acquisition channel.")] = None,
    campaign_id: Annotated[str | None, Query(min_length=1, max_length=250, description=DESCRIPTION)] = None,
    segment: Annotated[Literal[TIERS] | None, Query(description="The customer's value tier at the instant.")] = None,
    prop: Annotated[list[str], Query(alias="property", max_length=50, description=(
        "name=value: only items with this property at the instant (their own, else their customer's); "
        "repeatable."))] = [],  # noqa: B006 - FastAPI copies a Query default
) -> FunnelFilters:
    campaign = None if campaign_id is None else resolve_text(request, "campaign", campaign_id)
    return FunnelFilters(owner, region, industry, channel, campaign, segment, property_filters(prop))


def property_filters(assignments: list[str]) -> tuple[tuple[str, str], ...]:
    """`["product=GTX"]` → `(("product", "GTX"),)`, checked as a property change is (422 if not)."""
    pairs = [assignment.partition("=") for assignment in assignments]
    if any(not equals or not value.strip() for _, equals, value in pairs):
        raise ApiError(422, "a property filter is name=value, with a value")
    return tuple(require_changes({name: value for name, _, value in pairs}).items()) if pairs else ()


Filters = Annotated[FunnelFilters, Depends(filters)]


def funnel_store(request: Request, where: Filters, wait_for_position: WaitForPosition = None) -> ReadModelStore:
    """The read store, its freshness that of the read models the answer needs: segments only to filter by one."""
    return read_store(request, funnel_read_models(where), wait_for_position)


Store = Annotated[ReadModelStore, Depends(funnel_store)]
StuckDays = Annotated[float, Query(ge=0, le=36500, description="Stuck after this many days in a stage.")]


def _report(report: FunnelReport, params: PageParams, store: ReadModelStore | None = None) -> dict[str, Any]:
    """The report with its stuck items as one page (its `total` is the report's `stuck_total`); with `store`,
    each stuck item with its external id (`gateways.report_tables.with_external_ids`)."""
    data = report.to_dict()
    if store is not None:
        data = with_external_ids(data, ExternalIdQueries(store).external_ids(item.item_id for item in report.stuck))
    data["stuck"] = page(data["stuck"], params)
    return data


def _grouped(grouped: GroupedReport, params: PageParams) -> dict[str, Any]:
    """The grouped report with each group's stuck items as one page (its `total` the group's `stuck_total`)."""
    data = grouped.to_dict()
    for group in data["groups"]:
        group["stuck"] = page(group["stuck"], params)
    return data


def _listed(data: dict[str, Any]) -> dict[str, Any]:
    """A paged report as its tables take it: the stuck items of the page."""
    return {**data, "stuck": data["stuck"]["items"]}


Grain = Literal[GRAINS]  # type: ignore[valid-type]


@router.get("", summary="The funnel as of an instant (default now), or one per group (by, cohort); stuck items "
                        "paginated", responses=CSV_ANSWER)
def funnel(app: App, store: Store, where: Filters, params: Page, fmt: Format, pipeline: Pipeline = "sales",
           as_of: Annotated[Instant | None, Query(description="ISO 8601 with a zone; default now.")] = None,
           stuck_days: StuckDays = STUCK_DAYS,
           by: Annotated[list[str], Query(max_length=5, description=(
               "One funnel per value of owner, region, industry, channel, campaign or a property name (as of "
               "the instant); repeatable."))] = [],  # noqa: B006 - FastAPI copies a Query default
           cohort: Annotated[Grain | None, Query(description=(
               "One funnel per creation day, week, month, quarter or year (of the zone `tz`)."))] = None,
           zone: Zone = None) -> Response:  # type: ignore[assignment]
    instant = as_of or datetime.now(timezone.utc)
    queries, stages = funnel_queries(store), stages_of(app, pipeline)
    money = RateQueries(store).conversion(app.reporting_currency, instant)
    if by or cohort:
        grouped = _grouped(queries.grouped(pipeline, stages, instant, by, where, stuck_days, cohort, money, zone),
                           params)
        grouped = {**grouped, **shown_in(zone, as_of=instant)}
        return report_response(fmt, grouped, lambda: funnel_grouped_tables(
            {**grouped, "groups": [_listed(group) for group in grouped["groups"]]}), "funnel-groups")
    data = _report(queries.report(pipeline, stages, instant, where, stuck_days, money), params, store)
    data = {**data, **shown_in(zone, as_of=instant)}
    return report_response(fmt, data, lambda: funnel_tables(_listed(data)), "funnel")


def shown_in(zone: Any, **instants: datetime) -> dict[str, Any]:
    """The instants as the answer shows them, in `zone` (ISO 8601 with its offset), and the zone's name."""
    return {**{name: instant.astimezone(zone).isoformat() for name, instant in instants.items()},
            "time_zone": str(zone)}


@router.get("/periods", summary="Per day, week, month, quarter or year of the zone `tz` (default the installation's): "
                                "items won and lost in it, win rate, average cycle (per group with `by`); won "
                                "values converted at the rates in force at `end`",
            responses=CSV_ANSWER)
def periods(app: App, store: Store, where: Filters, fmt: Format, grain: Grain = "month",
            pipeline: Pipeline = "sales",
            start: Annotated[Instant | None, Query(description="Default: the first decision.")] = None,
            end: Annotated[Instant | None, Query(description="Default: now.")] = None,
            by: Annotated[list[str], Query(max_length=5, description="Per value of owner, region, …, a property.")]
            = [],  # noqa: B006 - FastAPI copies a Query default
            zone: Zone = None) -> Response:  # type: ignore[assignment]
    queries = funnel_queries(store)
    end = end or datetime.now(timezone.utc)
    start = start or queries.first_decision(pipeline) or end
    if end < start:
        raise ApiError(422, "end must not come before start")
    money = RateQueries(store).conversion(app.reporting_currency, end)
    head = {"pipeline": pipeline, "grain": grain, **shown_in(zone, start=start, end=end), **money.to_dict()}
    if by:
        groups = queries.periods_by(pipeline, grain, start, end, where, by, money, zone)
        data = {**head, "by": by, "groups": [
            {"key": dict(zip(by, key)), "periods": [vars(row) for row in rows]} for key, rows in groups.items()]}
    else:
        data = {**head, "periods": [vars(row) for row in queries.periods(pipeline, grain, start, end, where, money,
                                                                          zone)]}
    return report_response(fmt, data, lambda: funnel_periods_tables(data), "funnel-periods")


@router.get("/flow", summary="Per stage, items that entered, advanced and were lost in [start, end)", responses=CSV_ANSWER)
def flow(app: App, store: Store, where: Filters, fmt: Format, start: Annotated[Instant, Query()],
         end: Annotated[Instant, Query()], pipeline: Pipeline = "sales") -> Response:
    if end <= start:
        raise ApiError(422, "end must come after start")
    rows = funnel_queries(store).flow(pipeline, stages_of(app, pipeline), start, end, where)
    return report_response(fmt, {"pipeline": pipeline, "start": start, "end": end, "flow": [vars(r) for r in rows]},
                           lambda: single("flow", map(vars, rows)), "funnel-flow")


@router.get("/compare", summary="The funnel at two instants side by side; stuck items paginated", responses=CSV_ANSWER)
def compare(app: App, store: Store, where: Filters, params: Page, fmt: Format, first: Annotated[Instant, Query()],
            second: Annotated[Instant, Query()], pipeline: Pipeline = "sales",
            stuck_days: StuckDays = STUCK_DAYS) -> Response:
    queries, stages = funnel_queries(store), stages_of(app, pipeline)
    rates = RateQueries(store)
    then, now = (_report(queries.report(pipeline, stages, instant, where, stuck_days,
                                        rates.conversion(app.reporting_currency, instant)), params)
                 for instant in (first, second))
    return report_response(fmt, {"first": then, "second": now},
                           lambda: funnel_compare_tables(_listed(then), _listed(now)), "funnel-compare")
