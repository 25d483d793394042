"""The history-based forecast and its backtest (issue 15): GET /forecast/predict and GET /forecast/backtest.

They answer from the forecast read model (freshness headers, never catching up), by month or quarter of the
zone `tz` (default CRM_TIME_ZONE), money at the rates in force at each instant; a method without enough
history says so instead of a number. The JSON shape is `projections.forecast.outlook`'s (the dashboard draws
its chart from it); `?format=csv` gives one of its tables (`gateways.report_tables.outlook_tables`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from gateways.http.auth import allow
from gateways.http.deps import Zone, crm, fresh
from gateways.http.error_responses import ApiError
from gateways.http.json_body import StrictJsonRoute
from gateways.http.report_output import CSV_ANSWER, ReportFormat, report_format, report_response
from gateways.http.schemas import ERRORS, Instant
from gateways.report_tables import outlook_tables
from projections.forecast.outlook import Outlook, OutlookQueries
from projections.rates import RateQueries
from services.application import CrmApplication
from services.storage.read_model_store import ReadModelStore

router = APIRouter(prefix="/forecast", tags=["forecast"], responses=ERRORS, route_class=StrictJsonRoute,
                   dependencies=[Depends(allow("forecast:read"))])
Store = Annotated[ReadModelStore, Depends(fresh("forecast", "rates"))]  # money converted at the rates then
App = Annotated[CrmApplication, Depends(crm)]
Format = Annotated[ReportFormat, Depends(report_format)]
Periods = Annotated[int, Query(description="How many whole periods from as_of to forecast (1–24).")]
Grain = Annotated[str, Query(max_length=10, description="month (default) or quarter.")]
Methods = Annotated[list[str], Query(max_length=5, description="weighted, pipeline_conversion, trend, seasonal or "
                                                                "naive; repeatable (default all).")]
Level = Annotated[int, Query(description="The band's confidence in percent (50–99).")]


@router.get("/predict", summary="What each method forecasts will be won in the next whole periods, as of an instant "
                                "(default now), with its band or why there is none", responses=CSV_ANSWER)
def predict(store: Store, app: App, fmt: Format, zone: Zone = None,  # type: ignore[assignment]
            as_of: Annotated[Instant | None, Query(description="ISO 8601 with a zone; default now.")] = None,
            periods: Periods = 3, grain: Grain = "month",
            method: Methods = [], level: Level = 80) -> Response:  # noqa: B006 - FastAPI copies a Query default
    instant = as_of or datetime.now(timezone.utc)
    money = RateQueries(store).conversion(app.reporting_currency, instant)
    queries = OutlookQueries(store)
    return _answer(fmt, lambda: queries.forecast(instant, grain, periods, method, level, zone, money),
                   "forecast-predict")


@router.get("/backtest", summary="What each method forecast at a past instant for the following periods, beside "
                                 "what was won in them, with MAE, MAPE, bias and band coverage", responses=CSV_ANSWER)
def backtest(store: Store, app: App, fmt: Format,
             as_of: Annotated[Instant, Query(description="The past instant the forecast was made at (ISO 8601 with "
                                                         "a zone).")],
             actual_as_of: Annotated[Instant | None, Query(description="What closed, as known at this later "
                                                                       "instant; default now.")] = None,
             zone: Zone = None,  # type: ignore[assignment]
             periods: Periods = 3, grain: Grain = "month",
             method: Methods = [], level: Level = 80) -> Response:  # noqa: B006 - FastAPI copies a Query default
    actual = actual_as_of or datetime.now(timezone.utc)
    rates = RateQueries(store)
    money, actual_money = (rates.conversion(app.reporting_currency, instant) for instant in (as_of, actual))
    queries = OutlookQueries(store)
    return _answer(fmt, lambda: queries.backtest(as_of, actual, grain, periods, method, level, zone, money,
                                                 actual_money), "forecast-backtest")


def _answer(fmt: ReportFormat, ask: Callable[[], Outlook], name: str) -> Response:
    """The outlook `ask()` gives, as JSON or one CSV table; its bad input (ValueError) a 422 with the sentence."""
    try:
        outlook = ask()
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    report = outlook.to_dict()
    return report_response(fmt, report, lambda: outlook_tables(report), name)
