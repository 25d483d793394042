"""Deals: open, move between stages, change amount, owner or properties, win, lose, reopen; state and audit trail.

Every change accepts If-Match (or `expected_version`): a stale version is refused with 409.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from domain.deal import Deal
from gateways.http.auth import allow
from gateways.http.command_context import CommandContext, command
from gateways.http.deps import crm
from gateways.http.json_body import StrictJsonRoute
from gateways.http.pagination import PageParams, page, page_params
from gateways.http.report_output import CSV_ANSWER, ReportFormat, report_format, report_response
from gateways.http.responses import json_response
from gateways.report_tables import single
from gateways.http.schemas import ERRORS, Changed, Created, body_of
from gateways.http.serializers import audit_entry_view, deal_view
from gateways.http.record_ids import DealId
from services.application import CrmApplication
from services.commands import (ChangeAmount, ChangeDealProperties, ChangeOwner, ChangeStage, LoseDeal, OpenDeal,
                               ReopenDeal, WinDeal)
from services.commands.forecasts import ChangeExpectedClose, ChangeForecastCategory, ChangeProbability
from services.deal_audit import deal_audit_trail

router = APIRouter(prefix="/deals", tags=["deals"], responses=ERRORS, route_class=StrictJsonRoute)
Change = Annotated[CommandContext, Depends(command("deals:write"))]
Read = [Depends(allow("deals:read"))]


OpenDealBody = body_of(OpenDeal, "OpenDeal")
ChangeStageBody = body_of(ChangeStage, "ChangeStage", versioned=True)
ChangeAmountBody = body_of(ChangeAmount, "ChangeAmount", versioned=True)
ChangeOwnerBody = body_of(ChangeOwner, "ChangeOwner", versioned=True)
DealPropertiesBody = body_of(ChangeDealProperties, "DealProperties", versioned=True)
WinDealBody = body_of(WinDeal, "WinDeal", versioned=True)
LoseDealBody = body_of(LoseDeal, "LoseDeal", versioned=True)
ReopenDealBody = body_of(ReopenDeal, "ReopenDeal", versioned=True)
ExpectedCloseBody = body_of(ChangeExpectedClose, "ChangeExpectedClose", versioned=True)
ProbabilityBody = body_of(ChangeProbability, "ChangeProbability", versioned=True)
ForecastCategoryBody = body_of(ChangeForecastCategory, "ChangeForecastCategory", versioned=True)


@router.post("", status_code=201, response_model=Created, summary="Open a deal (owner defaults to you)")
def open_deal(body: OpenDealBody, cmd: Annotated[CommandContext, Depends(command("deals:write"))]) -> Response:
    return cmd.created(OpenDeal, body, "deals")


@router.get("/{deal_id}", summary="A deal's current state (ETag: its version)", dependencies=Read)
def get_deal(deal_id: DealId, app: Annotated[CrmApplication, Depends(crm)]) -> Response:
    deal = app.get(Deal, deal_id)
    return json_response(deal_view(deal), version=deal.version)


@router.get("/{deal_id}/history", summary="The deal's audit trail, oldest first: who, when, which stages, why",
            dependencies=Read, responses=CSV_ANSWER)
def history(deal_id: DealId, app: Annotated[CrmApplication, Depends(crm)],
            params: Annotated[PageParams, Depends(page_params)],
            fmt: Annotated[ReportFormat, Depends(report_format)]) -> Response:
    deal, entries = deal_audit_trail(app, deal_id)
    listed = {**page([audit_entry_view(e) for e in entries], params), "external_id": deal.external_id}
    if fmt.csv:
        return report_response(fmt, listed, lambda: single("entries", listed["items"]), "deal-history")
    return json_response(listed, version=deal.version)


@router.put("/{deal_id}/stage", response_model=Changed, summary="Move the deal to another open stage")
def change_stage(deal_id: DealId, body: ChangeStageBody, cmd: Change) -> Response:
    return cmd.changed(ChangeStage, body, deal_id=deal_id)


@router.put("/{deal_id}/amount", response_model=Changed, summary="Change the deal's amount")
def change_amount(deal_id: DealId, body: ChangeAmountBody, cmd: Change) -> Response:
    return cmd.changed(ChangeAmount, body, deal_id=deal_id)


@router.put("/{deal_id}/owner", response_model=Changed, summary="Hand the deal to another owner")
def change_owner(deal_id: DealId, body: ChangeOwnerBody, cmd: Change) -> Response:
    return cmd.changed(ChangeOwner, body, deal_id=deal_id)


@router.patch("/{deal_id}/properties", response_model=Changed, summary="Set named properties (product, team, …); a value \"\" removes one")
def change_properties(deal_id: DealId, body: DealPropertiesBody, cmd: Change) -> Response:
    return cmd.changed(ChangeDealProperties, body, deal_id=deal_id)


@router.post("/{deal_id}/win", response_model=Changed, summary="Mark the deal won")
def win(deal_id: DealId, cmd: Change, body: WinDealBody | None = None) -> Response:
    return cmd.changed(WinDeal, body or WinDealBody(), deal_id=deal_id)


@router.post("/{deal_id}/lose", response_model=Changed, summary="Mark the deal lost, with the reason")
def lose(deal_id: DealId, body: LoseDealBody, cmd: Change) -> Response:
    return cmd.changed(LoseDeal, body, deal_id=deal_id)


@router.post("/{deal_id}/reopen", response_model=Changed,
             summary="Reopen a won or lost deal (in `stage`, else the stage it closed from)")
def reopen(deal_id: DealId, body: ReopenDealBody, cmd: Change) -> Response:
    return cmd.changed(ReopenDeal, body, deal_id=deal_id)


@router.put("/{deal_id}/expected-close", response_model=Changed, summary="Move the deal's expected close date")
def change_expected_close(deal_id: DealId, body: ExpectedCloseBody, cmd: Change) -> Response:
    return cmd.changed(ChangeExpectedClose, body, deal_id=deal_id)


@router.put("/{deal_id}/probability", response_model=Changed,
            summary="Set the deal's own probability (null: its stage's default)")
def change_probability(deal_id: DealId, body: ProbabilityBody, cmd: Change) -> Response:
    return cmd.changed(ChangeProbability, body, deal_id=deal_id)


@router.put("/{deal_id}/forecast-category", response_model=Changed,
            summary="Set the deal's own forecast category (null: its stage's default)")
def change_forecast_category(deal_id: DealId, body: ForecastCategoryBody, cmd: Change) -> Response:
    return cmd.changed(ChangeForecastCategory, body, deal_id=deal_id)
