"""Leads: capture, assign, contact, qualify, disqualify, convert (→ a customer and a deal); read one."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel

from domain.base import Meta
from domain.lead import Lead
from domain.vocabulary import ACQUISITION_CHANNELS, ASSIGNMENT_RULES, TOUCH_CHANNELS
from gateways.http.auth import allow
from gateways.http.command_context import CommandContext, command
from gateways.http.deps import crm
from gateways.http.json_body import StrictJsonRoute
from gateways.http.responses import json_response
from gateways.http.schemas import (
    ERRORS,
    Amount,
    Changed,
    CommandBody,
    Created,
    Currency,
    Day,
    Email,
    Label,
    Name,
    Phone,
    Text,
)
from gateways.http.serializers import lead_view
from services.application import CrmApplication

router = APIRouter(prefix="/leads", tags=["leads"], responses=ERRORS, route_class=StrictJsonRoute)
Write = Annotated[CommandContext, Depends(command("leads:write"))]


class CaptureLead(CommandBody):
    name: Name
    company: Label = ""
    region: Name
    industry: Name
    channel: Literal[ACQUISITION_CHANNELS]  # type: ignore[valid-type]
    contact: Label = ""
    campaign_id: UUID | None = None


class AssignLead(CommandBody):
    owner: Name
    rule: Literal[ASSIGNMENT_RULES] = "manual"  # type: ignore[valid-type]


class ContactLead(CommandBody):
    channel: Literal[TOUCH_CHANNELS]  # type: ignore[valid-type]
    summary: Text = ""


class QualifyLead(CommandBody):
    note: Text = ""


class DisqualifyLead(CommandBody):
    reason: Text


class ConvertLead(CommandBody):
    deal_title: Name
    amount: Amount
    currency: Currency = "CNY"
    email: Email = ""
    phone: Phone = ""
    expected_close: Day | None = None


class Converted(BaseModel):
    lead_id: UUID
    customer_id: UUID
    deal_id: UUID


@router.post("", status_code=201, response_model=Created, summary="Capture a lead")
def capture(body: CaptureLead, cmd: Write) -> Response:
    return cmd.created(body, "leads", lambda meta: cmd.crm.capture_lead(
        body.name, body.company, body.region, body.industry, body.channel, meta,
        contact=body.contact, campaign_id=body.campaign_id))


@router.get("/{lead_id}", summary="A lead's current state (ETag: its version)",
            dependencies=[Depends(allow("leads:read"))])
def get_lead(lead_id: UUID, app: Annotated[CrmApplication, Depends(crm)]) -> Response:
    lead = app.get(Lead, lead_id)
    return json_response(lead_view(lead), version=lead.version)


@router.put("/{lead_id}/owner", response_model=Changed, summary="Assign the lead to an owner")
def assign(lead_id: UUID, body: AssignLead, cmd: Write) -> Response:
    return cmd.changed(body, lead_id, lambda meta, expected: cmd.crm.assign_lead(
        lead_id, body.owner, body.rule, meta, expected_version=expected))


@router.post("/{lead_id}/contacts", response_model=Changed, summary="Record that the owner contacted the lead")
def contact(lead_id: UUID, body: ContactLead, cmd: Write) -> Response:
    return cmd.changed(body, lead_id, lambda meta, expected: cmd.crm.contact_lead(
        lead_id, body.channel, body.summary, meta, expected_version=expected))


@router.post("/{lead_id}/qualify", response_model=Changed, summary="Qualify a contacted lead")
def qualify(lead_id: UUID, cmd: Write, body: QualifyLead | None = None) -> Response:
    body = body or QualifyLead()
    return cmd.changed(body, lead_id, lambda meta, expected: cmd.crm.qualify_lead(
        lead_id, body.note, meta, expected_version=expected))


@router.post("/{lead_id}/disqualify", response_model=Changed, summary="Disqualify a lead, with the reason")
def disqualify(lead_id: UUID, body: DisqualifyLead, cmd: Write) -> Response:
    return cmd.changed(body, lead_id, lambda meta, expected: cmd.crm.disqualify_lead(
        lead_id, body.reason, meta, expected_version=expected))


@router.post("/{lead_id}/convert", status_code=201, response_model=Converted,
             summary="Convert a qualified lead into a customer and an open sales deal (Location: the deal)")
def convert(lead_id: UUID, body: ConvertLead, cmd: Write) -> Response:
    def respond(meta: Meta) -> Response:
        customer_id, deal_id = cmd.crm.convert_lead(lead_id, body.deal_title, body.amount, body.currency, meta,
                                                    email=body.email, phone=body.phone,
                                                    expected_close=body.expected_close)
        return json_response({"lead_id": lead_id, "customer_id": customer_id, "deal_id": deal_id}, 201,
                             headers={"Location": f"/deals/{deal_id}"})
    return cmd.run(body, respond)
