"""The sales forecast as of an instant, and the targets and teams it compares with (issue 15).

GET /forecast answers from the forecast read model (freshness headers, never catching up), by month or
quarter of the installation's zone (CRM_TIME_ZONE) — `?period=2026-Q1` or `?grain=month` — and `?by=owner|
team|region|pipeline`, money at the rates in force at the instant. Targets and teams are set by PUT on their
names (If-Match: the version seen, "0" for one not set yet); GET lists those in force at an instant.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from gateways.http.auth import allow
from gateways.http.command_context import CommandContext, command
from gateways.http.deps import crm, fresh
from gateways.http.error_responses import ApiError
from gateways.http.json_body import StrictJsonRoute
from gateways.http.report_output import CSV_ANSWER, ReportFormat, report_format, report_response
from gateways.http.schemas import ERRORS, NO_NUL, Changed, Instant, body_of
from gateways.report_tables import forecast_tables, single
from projections.forecast import ForecastQueries
from projections.forecast.queries import targets_in_force, teams_in_force
from projections.rates import RateQueries
from services.application import CrmApplication
from services.commands.forecasts import AssignTeam, SetTarget
from services.settings import time_zone_from_environment
from services.storage.read_model_store import ReadModelStore

router = APIRouter(tags=["forecast"], responses=ERRORS, route_class=StrictJsonRoute)
ForecastRead, TargetsRead, TeamsRead = ([Depends(allow(f"{area}:read"))] for area in ("forecast", "targets", "teams"))
TargetsWrite = Annotated[CommandContext, Depends(command("targets:write"))]
TeamsWrite = Annotated[CommandContext, Depends(command("teams:write"))]
Store = Annotated[ReadModelStore, Depends(fresh("forecast", "rates"))]  # money converted at the rates at T
Settings = Annotated[ReadModelStore, Depends(fresh("forecast"))]  # targets and teams: no money converted
Format = Annotated[ReportFormat, Depends(report_format)]
AsOf = Annotated[Instant | None, Query(description="ISO 8601 with a zone; default now.")]
Text = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)]

SetTargetBody = body_of(SetTarget, "SetTarget", from_url=("scope", "name", "period"))
AssignTeamBody = body_of(AssignTeam, "AssignTeam", from_url=("owner",))


@router.get("/forecast", summary="Closed won, commit, best case, weighted pipeline, target, attainment and gap per "
                                 "month or quarter, as of an instant (default now)", dependencies=ForecastRead,
            responses=CSV_ANSWER)
def forecast(store: Store, app: Annotated[CrmApplication, Depends(crm)],
             fmt: Format, as_of: AsOf = None,
             period: Annotated[str | None, Query(max_length=10, description="Only this month (2026-03) or quarter "
                                                                            "(2026-Q1).")] = None,
             grain: Annotated[str | None, Query(max_length=10, description="month or quarter (default).")] = None,
             by: Annotated[str | None, Query(max_length=20, description="owner, team (the owner's then), region "
                                                                        "(the customer's) or pipeline.")] = None,
             ) -> Response:
    if period is not None and grain is not None:
        raise ApiError(422, "give either period or grain: a period names its own grain")
    instant = as_of or datetime.now(timezone.utc)
    money = RateQueries(store).conversion(app.reporting_currency, instant)
    try:
        report = ForecastQueries(store).report(instant, grain or "quarter", by, period, time_zone_from_environment(),
                                               money).to_dict()
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    return report_response(fmt, report, lambda: forecast_tables(report), "forecast")


@router.put("/targets/{scope}/{name}/{period}", response_model=Changed,
            summary="Set an owner's or a team's target for a month or a quarter (new or changed)")
def set_target(scope: Annotated[str, Path(pattern=r"^(owner|team)$")], name: Text,
               period: Annotated[str, Path(max_length=10)], body: SetTargetBody, cmd: TargetsWrite) -> Response:
    return cmd.changed(SetTarget, body, scope=scope, name=name, period=period)


@router.get("/targets", summary="The targets in force at an instant (default now)", dependencies=TargetsRead,
            responses=CSV_ANSWER)
def list_targets(store: Settings, fmt: Format, as_of: AsOf = None) -> Response:
    return _listing("targets", targets_in_force(store, as_of or datetime.now(timezone.utc)), fmt)


@router.put("/teams/{owner}", response_model=Changed, summary="Put a deal owner in a team from now on (\"\": none)")
def assign_team(owner: Text, body: AssignTeamBody, cmd: TeamsWrite) -> Response:
    return cmd.changed(AssignTeam, body, owner=owner)


@router.get("/teams", summary="Every owner's team at an instant (default now)", dependencies=TeamsRead,
            responses=CSV_ANSWER)
def list_teams(store: Settings, fmt: Format, as_of: AsOf = None) -> Response:
    return _listing("teams", teams_in_force(store, as_of or datetime.now(timezone.utc)), fmt)


def _listing(name: str, rows: list[dict[str, Any]], fmt: ReportFormat) -> Response:
    return report_response(fmt, {name: rows}, lambda: single(name, rows), name)


