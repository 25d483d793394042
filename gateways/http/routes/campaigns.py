"""Campaigns: plan, launch, record cost and responses, close; read one."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from domain.campaign import Campaign
from domain.vocabulary import ACQUISITION_CHANNELS, RESPONSE_KINDS
from gateways.http.auth import allow
from gateways.http.command_context import CommandContext, command
from gateways.http.deps import crm
from gateways.http.json_body import StrictJsonRoute
from gateways.http.responses import json_response
from gateways.http.schemas import ERRORS, Amount, Changed, CommandBody, Created, Currency, Name, Text
from gateways.http.serializers import campaign_view
from services.application import CrmApplication

router = APIRouter(prefix="/campaigns", tags=["campaigns"], responses=ERRORS, route_class=StrictJsonRoute)
Write = Annotated[CommandContext, Depends(command("campaigns:write"))]


class PlanCampaign(CommandBody):
    name: Name
    channel: Literal[ACQUISITION_CHANNELS]  # type: ignore[valid-type]
    budget: Amount
    currency: Currency = "CNY"


class RecordCost(CommandBody):
    amount: Amount
    note: Text = ""


class RecordResponse(CommandBody):
    kind: Literal[RESPONSE_KINDS]  # type: ignore[valid-type]
    customer_id: UUID | None = None
    lead_id: UUID | None = None


@router.post("", status_code=201, response_model=Created, summary="Plan a campaign")
def plan(body: PlanCampaign, cmd: Write) -> Response:
    return cmd.created(body, "campaigns", lambda meta: cmd.crm.plan_campaign(
        body.name, body.channel, body.budget, body.currency, meta))


@router.get("/{campaign_id}", summary="A campaign's current state (ETag: its version)",
            dependencies=[Depends(allow("campaigns:read"))])
def get_campaign(campaign_id: UUID, app: Annotated[CrmApplication, Depends(crm)]) -> Response:
    campaign = app.get(Campaign, campaign_id)
    return json_response(campaign_view(campaign), version=campaign.version)


@router.post("/{campaign_id}/launch", response_model=Changed, summary="Launch a planned campaign")
def launch(campaign_id: UUID, cmd: Write, body: CommandBody | None = None) -> Response:
    body = body or CommandBody()
    return cmd.changed(body, campaign_id, lambda meta, expected: cmd.crm.launch_campaign(
        campaign_id, meta, expected_version=expected))


@router.post("/{campaign_id}/costs", response_model=Changed, summary="Record a cost")
def record_cost(campaign_id: UUID, body: RecordCost, cmd: Write) -> Response:
    return cmd.changed(body, campaign_id, lambda meta, expected: cmd.crm.record_cost(
        campaign_id, body.amount, meta, body.note, expected_version=expected))


@router.post("/{campaign_id}/responses", response_model=Changed,
             summary="Record a response (impression, click, registration…) of a customer or lead")
def record_response(campaign_id: UUID, body: RecordResponse, cmd: Write) -> Response:
    return cmd.changed(body, campaign_id, lambda meta, expected: cmd.crm.record_response(
        campaign_id, body.kind, meta, customer_id=body.customer_id, lead_id=body.lead_id, expected_version=expected))


@router.post("/{campaign_id}/close", response_model=Changed, summary="Close a running campaign")
def close(campaign_id: UUID, cmd: Write, body: CommandBody | None = None) -> Response:
    body = body or CommandBody()
    return cmd.changed(body, campaign_id, lambda meta, expected: cmd.crm.close_campaign(
        campaign_id, meta, expected_version=expected))
