"""Campaigns: plan, launch, record cost and responses, close; read one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from domain.campaign import Campaign
from gateways.http.auth import allow
from gateways.http.command_context import CommandContext, command
from gateways.http.deps import crm
from gateways.http.json_body import StrictJsonRoute
from gateways.http.responses import json_response
from gateways.http.schemas import ERRORS, Changed, CommandBody, Created, body_of
from gateways.http.serializers import campaign_view
from gateways.http.record_ids import CampaignId
from services.application import CrmApplication
from services.commands import CloseCampaign, LaunchCampaign, PlanCampaign, RecordCost, RecordResponse

router = APIRouter(prefix="/campaigns", tags=["campaigns"], responses=ERRORS, route_class=StrictJsonRoute)
Write = Annotated[CommandContext, Depends(command("campaigns:write"))]


PlanCampaignBody = body_of(PlanCampaign, "PlanCampaign")
RecordCostBody = body_of(RecordCost, "RecordCost")
RecordResponseBody = body_of(RecordResponse, "RecordResponse")


@router.post("", status_code=201, response_model=Created, summary="Plan a campaign")
def plan(body: PlanCampaignBody, cmd: Write) -> Response:
    return cmd.created(PlanCampaign, body, "campaigns")


@router.get("/{campaign_id}", summary="A campaign's current state (ETag: its version)",
            dependencies=[Depends(allow("campaigns:read"))])
def get_campaign(campaign_id: CampaignId, app: Annotated[CrmApplication, Depends(crm)]) -> Response:
    campaign = app.get(Campaign, campaign_id)
    return json_response(campaign_view(campaign), version=campaign.version)


@router.post("/{campaign_id}/launch", response_model=Changed, summary="Launch a planned campaign")
def launch(campaign_id: CampaignId, cmd: Write, body: CommandBody | None = None) -> Response:
    return cmd.changed(LaunchCampaign, body or CommandBody(), campaign_id=campaign_id)


@router.post("/{campaign_id}/costs", response_model=Changed, summary="Record a cost")
def record_cost(campaign_id: CampaignId, body: RecordCostBody, cmd: Write) -> Response:
    return cmd.changed(RecordCost, body, campaign_id=campaign_id)


@router.post("/{campaign_id}/responses", response_model=Changed,
             summary="Record a response (impression, click, registration…) of a customer or lead")
def record_response(campaign_id: CampaignId, body: RecordResponseBody, cmd: Write) -> Response:
    return cmd.changed(RecordResponse, body, campaign_id=campaign_id)


@router.post("/{campaign_id}/close", response_model=Changed, summary="Close a running campaign")
def close(campaign_id: CampaignId, cmd: Write, body: CommandBody | None = None) -> Response:
    return cmd.changed(CloseCampaign, body or CommandBody(), campaign_id=campaign_id)
