"""Pipeline inspection between two instants and win/loss as of an instant (issue 15), from the inspection read
model (freshness headers, never catching up), in the zone `?tz=` (default the installation's, CRM_TIME_ZONE).

GET /inspection/slippage and /inspection/changes take the window (from, to] (default the week before now);
GET /inspection/inactive the deals without activity for `days` as of an instant; GET /winloss won and lost
deals as of an instant, money at the rates then (JSON: the deals a page at a time, `limit`/`offset`, the totals
and groups over all of them; CSV: every deal). Permission "forecast:read" (admin, analyst, sales): the sales
manager's view, as the forecast is. Bad input (a window that does not run forwards, negative days, an unknown
grain or grouping) is 422 with a sentence. CSV with ?format=csv (&table=).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from gateways.http.auth import allow
from gateways.http.deps import Zone, crm, fresh
from gateways.http.error_responses import ApiError
from gateways.http.pagination import PageParams, page, page_params
from gateways.http.report_output import CSV_ANSWER, ReportFormat, report_format, report_response
from gateways.http.schemas import ERRORS, NO_NUL, Instant
from gateways.report_tables import changes_tables, inactive_tables, slippage_tables, winloss_tables
from projections.inspection import InspectionQueries, Where
from projections.rates import RateQueries
from services.application import CrmApplication
from services.storage.read_model_store import ReadModelStore

router = APIRouter(tags=["inspection"], responses=ERRORS, dependencies=[Depends(allow("forecast:read"))])
Store = Annotated[ReadModelStore, Depends(fresh("inspection"))]
Converting = Annotated[ReadModelStore, Depends(fresh("inspection", "rates"))]  # win/loss converts at the rates at T
App = Annotated[CrmApplication, Depends(crm)]
Format = Annotated[ReportFormat, Depends(report_format)]
Page = Annotated[PageParams, Depends(page_params)]
Start = Annotated[Instant | None, Query(alias="from", description="The window's start (excluded), ISO 8601 with a "
                                                                  "zone; default a week before `to`.")]
End = Annotated[Instant | None, Query(alias="to", description="The window's end (included); default now.")]
AsOf = Annotated[Instant | None, Query(description="ISO 8601 with a zone; default now.")]


def where(owner: Annotated[str | None, Query(max_length=200, pattern=NO_NUL, description="Only deals of this owner "
                                                                                         "(as of the end).")] = None,
          team: Annotated[str | None, Query(max_length=200, pattern=NO_NUL, description="Only deals whose owner is "
                                                                                        "in this team then.")] = None,
          pipeline: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None) -> Where:
    return Where(owner, team, pipeline)


Filters = Annotated[Where, Depends(where)]


def _answer(fmt: ReportFormat, ask: Callable[[], dict[str, Any]], tables: Callable[[dict[str, Any]], Any],
            name: str) -> Response:
    try:
        report = ask()
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    return report_response(fmt, report, lambda: tables(report), name)


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    stop = end or datetime.now(timezone.utc)
    return start or stop - timedelta(days=7), stop


@router.get("/inspection/slippage", summary="Deals whose expected close date moved in (from, to]: pushed to a later "
                                            "period, pulled in, within one, or set; who and why", responses=CSV_ANSWER)
def slippage(store: Store, app: App, fmt: Format, zone: Zone, filters: Filters, start: Start = None, end: End = None,
             grain: Annotated[str, Query(max_length=10, description="month or quarter (default).")] = "quarter",
             ) -> Response:
    a, b = _window(start, end)
    queries = InspectionQueries(store, app.keys.unseal_all_marks)
    return _answer(fmt, lambda: queries.slippage(a, b, grain, zone, filters), slippage_tables, "slippage")


@router.get("/inspection/changes", summary="Amount changes and stage moves (wins, losses, reopenings) in (from, to], "
                                           "by whom", responses=CSV_ANSWER)
def changes(store: Store, app: App, fmt: Format, zone: Zone, filters: Filters, start: Start = None,
            end: End = None) -> Response:
    a, b = _window(start, end)
    queries = InspectionQueries(store, app.keys.unseal_all_marks)
    return _answer(fmt, lambda: queries.changes(a, b, zone, filters), changes_tables, "changes")


@router.get("/inspection/inactive", summary="Open deals without activity (their own events, their customer's touches "
                                            "and tickets) for `days` as of an instant", responses=CSV_ANSWER)
def inactive(store: Store, app: App, fmt: Format, zone: Zone, filters: Filters, as_of: AsOf = None,
             days: Annotated[int, Query(ge=-10**6, le=10**6, description="Days (× 24 h); default 14.")] = 14
             ) -> Response:
    instant = as_of or datetime.now(timezone.utc)
    queries = InspectionQueries(store, app.keys.unseal_all_marks)
    return _answer(fmt, lambda: queries.inactive(instant, days, zone, filters), inactive_tables, "inactive")


@router.get("/winloss", summary="Won and lost deals as of an instant: counts, values, win rate, loss reasons and "
                                "competitors, per stage, owner, team, product, period, pipeline or competitor",
            responses=CSV_ANSWER)
def winloss(store: Converting, app: App, fmt: Format, zone: Zone, filters: Filters, params: Page, as_of: AsOf = None,
            by: Annotated[str | None, Query(max_length=20)] = None,
            grain: Annotated[str | None, Query(max_length=10, description="month or quarter (default).")] = None,
            period: Annotated[str | None, Query(max_length=10, description="Only deals closed in this month "
                                                                           "(2026-03) or quarter (2026-Q1).")] = None,
            ) -> Response:
    instant = as_of or datetime.now(timezone.utc)
    money = RateQueries(store).conversion(app.reporting_currency, instant)
    queries = InspectionQueries(store, app.keys.unseal_all_marks)
    def ask() -> dict[str, Any]:
        report = queries.winloss(instant, by, grain, zone, filters, money, period)
        if fmt.csv:  # an export: every deal
            return report
        return report | {"deals": page(report["deals"], params)}  # JSON: the totals whole, the deals a page at a time
    return _answer(fmt, ask, winloss_tables, "winloss")
