"""Leads: capture, assign, contact, qualify, disqualify, convert (→ a customer and a deal); read one."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel

from domain.base import Meta
from domain.lead import Lead
from gateways.http.auth import allow
from gateways.http.command_context import CommandContext, command
from gateways.http.deps import crm
from gateways.http.json_body import StrictJsonRoute
from gateways.http.responses import json_response
from gateways.http.schemas import ERRORS, Changed, Created, body_of
from gateways.http.serializers import lead_view
from gateways.http.record_ids import LeadId
from services.application import CrmApplication
from services.commands import AssignLead, CaptureLead, ContactLead, ConvertLead, DisqualifyLead, QualifyLead

router = APIRouter(prefix="/leads", tags=["leads"], responses=ERRORS, route_class=StrictJsonRoute)
Write = Annotated[CommandContext, Depends(command("leads:write"))]


CaptureLeadBody = body_of(CaptureLead, "CaptureLead")
AssignLeadBody = body_of(AssignLead, "AssignLead")
ContactLeadBody = body_of(ContactLead, "ContactLead")
QualifyLeadBody = body_of(QualifyLead, "QualifyLead")
DisqualifyLeadBody = body_of(DisqualifyLead, "DisqualifyLead")
ConvertLeadBody = body_of(ConvertLead, "ConvertLead", from_url=("lead_id",))


class Converted(BaseModel):
    lead_id: UUID
    customer_id: UUID
    deal_id: UUID


@router.post("", status_code=201, response_model=Created, summary="Capture a lead")
def capture(body: CaptureLeadBody, cmd: Write) -> Response:
    return cmd.created(CaptureLead, body, "leads")


@router.get("/{lead_id}", summary="A lead's current state (ETag: its version)",
            dependencies=[Depends(allow("leads:read"))])
def get_lead(lead_id: LeadId, app: Annotated[CrmApplication, Depends(crm)]) -> Response:
    lead = app.get(Lead, lead_id)
    return json_response(lead_view(lead), version=lead.version)


@router.put("/{lead_id}/owner", response_model=Changed, summary="Assign the lead to an owner")
def assign(lead_id: LeadId, body: AssignLeadBody, cmd: Write) -> Response:
    return cmd.changed(AssignLead, body, lead_id=lead_id)


@router.post("/{lead_id}/contacts", response_model=Changed, summary="Record that the owner contacted the lead")
def contact(lead_id: LeadId, body: ContactLeadBody, cmd: Write) -> Response:
    return cmd.changed(ContactLead, body, lead_id=lead_id)


@router.post("/{lead_id}/qualify", response_model=Changed, summary="Qualify a contacted lead")
def qualify(lead_id: LeadId, cmd: Write, body: QualifyLeadBody | None = None) -> Response:
    return cmd.changed(QualifyLead, body or QualifyLeadBody(), lead_id=lead_id)


@router.post("/{lead_id}/disqualify", response_model=Changed, summary="Disqualify a lead, with the reason")
def disqualify(lead_id: LeadId, body: DisqualifyLeadBody, cmd: Write) -> Response:
    return cmd.changed(DisqualifyLead, body, lead_id=lead_id)


@router.post("/{lead_id}/convert", status_code=201, response_model=Converted,
             summary="Convert a qualified lead into a customer and an open sales deal (Location: the deal)")
def convert(lead_id: LeadId, body: ConvertLeadBody, cmd: Write) -> Response:
    conversion = cmd.command_of(ConvertLead, body, lead_id=lead_id)

    def respond(meta: Meta) -> Response:
        customer_id, deal_id = cmd.crm.handle(conversion, meta)
        return json_response({"lead_id": lead_id, "customer_id": customer_id, "deal_id": deal_id}, 201,
                             headers={"Location": f"/deals/{deal_id}"})
    return cmd.run(body, respond)
