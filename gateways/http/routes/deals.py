"""Deals: open, move between stages, change amount or owner, win, lose, reopen; state and audit trail.

Every change accepts If-Match (or `expected_version`): a stale version is refused with 409.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from domain.deal import Deal
from gateways.http.auth import allow
from gateways.http.command_context import CommandContext, command
from gateways.http.deps import crm
from gateways.http.json_body import StrictJsonRoute
from gateways.http.pagination import PageParams, page, page_params
from gateways.http.responses import json_response
from gateways.http.schemas import (
    ERRORS,
    Amount,
    Changed,
    CommandBody,
    Created,
    Currency,
    Day,
    Label,
    Name,
    StageKey,
    Text,
    VersionedBody,
)
from gateways.http.serializers import audit_entry_view, deal_view
from services.application import CrmApplication
from services.deal_audit import deal_audit_trail

router = APIRouter(prefix="/deals", tags=["deals"], responses=ERRORS, route_class=StrictJsonRoute)
Change = Annotated[CommandContext, Depends(command("deals:write"))]
Read = [Depends(allow("deals:read"))]


class OpenDeal(CommandBody):
    pipeline: StageKey = "sales"
    customer_id: UUID
    title: Name
    amount: Amount
    currency: Currency = "CNY"
    owner: Name | None = None
    stage: StageKey | None = None
    expected_close: Day | None = None
    lead_id: UUID | None = None
    campaign_id: UUID | None = None


class ChangeStage(VersionedBody):
    stage: StageKey
    reason: Text = ""


class ChangeAmount(VersionedBody):
    amount: Amount


class ChangeOwner(VersionedBody):
    owner: Name


class WinDeal(VersionedBody):
    note: Text = ""


class LoseDeal(VersionedBody):
    reason: Text
    competitor: Label = ""  # who won instead, when known


class ReopenDeal(VersionedBody):
    reason: Text
    stage: StageKey | None = None


@router.post("", status_code=201, response_model=Created, summary="Open a deal (owner defaults to you)")
def open_deal(body: OpenDeal, cmd: Annotated[CommandContext, Depends(command("deals:write"))]) -> Response:
    return cmd.created(body, "deals", lambda meta: cmd.crm.open_deal(
        body.pipeline, body.customer_id, body.title, body.amount, body.currency, body.owner or meta.actor, meta,
        stage=body.stage, expected_close=body.expected_close, lead_id=body.lead_id, campaign_id=body.campaign_id))


@router.get("/{deal_id}", summary="A deal's current state (ETag: its version)", dependencies=Read)
def get_deal(deal_id: UUID, app: Annotated[CrmApplication, Depends(crm)]) -> Response:
    deal = app.get(Deal, deal_id)
    return json_response(deal_view(deal), version=deal.version)


@router.get("/{deal_id}/history", summary="The deal's audit trail, oldest first: who, when, which stages, why",
            dependencies=Read)
def history(deal_id: UUID, app: Annotated[CrmApplication, Depends(crm)],
            params: Annotated[PageParams, Depends(page_params)]) -> Response:
    deal, entries = deal_audit_trail(app, deal_id)
    return json_response(page([audit_entry_view(e) for e in entries], params), version=deal.version)


@router.put("/{deal_id}/stage", response_model=Changed, summary="Move the deal to another open stage")
def change_stage(deal_id: UUID, body: ChangeStage, cmd: Change) -> Response:
    return cmd.changed(body, deal_id, lambda meta, expected: cmd.crm.change_stage(
        deal_id, body.stage, body.reason, meta, expected_version=expected))


@router.put("/{deal_id}/amount", response_model=Changed, summary="Change the deal's amount")
def change_amount(deal_id: UUID, body: ChangeAmount, cmd: Change) -> Response:
    return cmd.changed(body, deal_id, lambda meta, expected: cmd.crm.change_amount(
        deal_id, body.amount, meta, expected_version=expected))


@router.put("/{deal_id}/owner", response_model=Changed, summary="Hand the deal to another owner")
def change_owner(deal_id: UUID, body: ChangeOwner, cmd: Change) -> Response:
    return cmd.changed(body, deal_id, lambda meta, expected: cmd.crm.change_owner(
        deal_id, body.owner, meta, expected_version=expected))


@router.post("/{deal_id}/win", response_model=Changed, summary="Mark the deal won")
def win(deal_id: UUID, cmd: Change, body: WinDeal | None = None) -> Response:
    body = body or WinDeal()
    return cmd.changed(body, deal_id, lambda meta, expected: cmd.crm.win_deal(
        deal_id, meta, body.note, expected_version=expected))


@router.post("/{deal_id}/lose", response_model=Changed, summary="Mark the deal lost, with the reason")
def lose(deal_id: UUID, body: LoseDeal, cmd: Change) -> Response:
    return cmd.changed(body, deal_id, lambda meta, expected: cmd.crm.lose_deal(
        deal_id, body.reason, meta, body.competitor, expected_version=expected))


@router.post("/{deal_id}/reopen", response_model=Changed,
             summary="Reopen a won or lost deal (in `stage`, else the stage it closed from)")
def reopen(deal_id: UUID, body: ReopenDeal, cmd: Change) -> Response:
    return cmd.changed(body, deal_id, lambda meta, expected: cmd.crm.reopen_deal(
        deal_id, body.reason, meta, body.stage, expected_version=expected))
