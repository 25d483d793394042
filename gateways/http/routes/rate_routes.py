"""Exchange rates: record a pair's rate for a date; the rates in force at an instant; every rate recorded.

Permissions "rates:write" (admin: the figures every report converts with are a finance decision, not a
salesperson's) and "rates:read" (sales and analysts; admin).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel

from domain.base import Meta
from gateways.http.auth import allow
from gateways.http.command_context import CommandContext, command
from gateways.http.deps import crm, fresh
from gateways.http.error_responses import ApiError
from gateways.http.json_body import StrictJsonRoute
from gateways.http.responses import json_response
from gateways.http.schemas import ERRORS, Instant, body_of
from projections.rates import RateQueries
from services.application import CrmApplication
from services.commands import RecordExchangeRate
from services.commands.field_types import Currency
from services.storage.read_model_store import ReadModelStore

router = APIRouter(prefix="/exchange-rates", tags=["exchange rates"], responses=ERRORS, route_class=StrictJsonRoute)
Write = Annotated[CommandContext, Depends(command("rates:write"))]
Rates = Annotated[ReadModelStore, Depends(fresh("rates"))]
App = Annotated[CrmApplication, Depends(crm)]
RecordExchangeRateBody = body_of(RecordExchangeRate, "RecordExchangeRate")


class RateRecorded(BaseModel):
    id: str
    outcome: str  # recorded, corrected or unchanged
    currency: str
    quote: str
    valid_from: str


@router.post("", response_model=RateRecorded, status_code=201,
             summary="Record a rate for a date (201 recorded; 200 corrected or unchanged: the same again writes "
                     "nothing)")
def record(body: RecordExchangeRateBody, cmd: Write) -> Response:
    if cmd.expected_version(body) is not None:
        raise ApiError(400, "If-Match and expected_version do not apply to exchange rates: a date's rate is "
                            "recorded or corrected whatever its version")
    asked = cmd.command_of(RecordExchangeRate, body)

    def respond(meta: Meta) -> Response:
        rate_id, outcome = cmd.crm.handle(asked, meta)
        return json_response({"id": str(rate_id), "outcome": outcome, "currency": asked.currency,
                              "quote": asked.quote or cmd.crm.reporting_currency,
                              "valid_from": asked.valid_from.isoformat()}, 201 if outcome == "recorded" else 200)
    return cmd.run(body, respond)


@router.get("", summary="The rates into the reporting currency (or `quote`) in force at an instant (default now)",
            dependencies=[Depends(allow("rates:read"))])
def in_force(store: Rates, app: App, as_of: Annotated[Instant | None, Query()] = None,
             quote: Annotated[Currency | None, Query()] = None) -> Response:
    instant, quote = as_of or datetime.now(timezone.utc), quote or app.reporting_currency
    rates = RateQueries(store).in_force(quote, instant)
    return json_response({"quote": quote, "as_of": instant.isoformat(), "rates": [
        {"currency": c, "rate": str(r.rate), "valid_from": r.valid_from.isoformat()} for c, r in sorted(rates.items())]})


@router.get("/recorded", summary="Every rate recorded, newest date first (optionally one currency or quote)",
            dependencies=[Depends(allow("rates:read"))])
def recorded(store: Rates, currency: Annotated[Currency | None, Query()] = None,
             quote: Annotated[Currency | None, Query()] = None,
             limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> Response:
    return json_response({"rates": [r.to_dict() for r in RateQueries(store).listing(quote, currency, limit)]})
