"""Multi-touch attribution and acquisition cohorts as of an instant (issue 16), beside the campaigns report.

GET /reports/attribution shares each won deal's value over its customer's campaign touches before the win
under one model (first_touch, last_touch, linear, u_shaped, w_shaped, time_decay with `half_life_days`),
per campaign, channel or variant; GET /reports/cohorts gives CAC and CLV per channel and month or quarter
of registration in the zone `tz`. Both answer from the attribution read model (freshness headers, never
catching up), money at the rates in force at the instant, permission "reports:read" as the campaigns report.
"""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from domain.attribution import HALF_LIFE_DAYS
from gateways.http.auth import allow
from gateways.http.deps import crm, fresh, report_zone
from gateways.http.error_responses import ApiError
from gateways.http.report_output import CSV_ANSWER, ReportFormat, report_format, report_response
from gateways.http.schemas import ERRORS, Instant
from gateways.report_tables import attribution_tables, cohort_tables
from projections.attribution import AttributionQueries
from projections.rates import RateQueries
from services.application import CrmApplication
from services.storage.read_model_store import ReadModelStore

router = APIRouter(prefix="/reports", tags=["reports"], responses=ERRORS,
                   dependencies=[Depends(allow("reports:read"))])
Store = Annotated[ReadModelStore, Depends(fresh("attribution", "rates"))]  # money converted at the rates at T
Format = Annotated[ReportFormat, Depends(report_format)]
AsOf = Annotated[Instant | None, Query(description="ISO 8601 with a zone; default now.")]


@router.get("/attribution", summary="Won revenue credited to campaigns, channels or variants under a multi-touch "
                                    "model, as of an instant (default now)", responses=CSV_ANSWER)
def attribution(store: Store, app: Annotated[CrmApplication, Depends(crm)], fmt: Format, as_of: AsOf = None,
                model: Annotated[str, Query(max_length=20, description=(
                    "first_touch, last_touch, linear (default), u_shaped, w_shaped or time_decay."))] = "linear",
                by: Annotated[str, Query(max_length=20, description="campaign (default), channel or variant.")] = "campaign",
                half_life_days: Annotated[float, Query(description=(
                    "time_decay: a touch's weight halves every this many days before the win (default 7)."))]
                = HALF_LIFE_DAYS) -> Response:
    instant = as_of or datetime.now(timezone.utc)
    money = RateQueries(store).conversion(app.reporting_currency, instant)
    try:
        report = AttributionQueries(store).credits(instant, model, by, half_life_days, money)
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    return report_response(fmt, report, lambda: attribution_tables(report), "attribution")


@router.get("/cohorts", summary="CAC and CLV per acquisition channel and month or quarter of registration, as of "
                                "an instant (default now)", responses=CSV_ANSWER)
def cohorts(store: Store, app: Annotated[CrmApplication, Depends(crm)], fmt: Format,
            zone: Annotated[tzinfo, Depends(report_zone)], as_of: AsOf = None,
            grain: Annotated[str, Query(max_length=10, description="month (default) or quarter.")] = "month",
            ) -> Response:
    instant = as_of or datetime.now(timezone.utc)
    money = RateQueries(store).conversion(app.reporting_currency, instant)
    try:
        report = AttributionQueries(store).cohorts(instant, grain, zone, money)
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    return report_response(fmt, report, lambda: cohort_tables(report), "cohorts")
