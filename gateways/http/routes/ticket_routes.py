"""Service tickets: open, assign, change status, customer replies, resolve, rate, reopen, close; read one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from domain.ticket import Ticket
from gateways.http.auth import allow
from gateways.http.command_context import CommandContext, command
from gateways.http.deps import crm
from gateways.http.json_body import StrictJsonRoute
from gateways.http.responses import json_response
from gateways.http.schemas import ERRORS, Changed, CommandBody, Created, body_of
from gateways.http.serializers import ticket_view
from gateways.http.record_ids import TicketId
from services.application import CrmApplication
from services.commands import (AssignTicket, ChangeTicketStatus, CloseTicket, OpenTicket, RateTicket,
                               RecordCustomerReply, ReopenTicket, ResolveTicket)

router = APIRouter(prefix="/tickets", tags=["tickets"], responses=ERRORS, route_class=StrictJsonRoute)
Write = Annotated[CommandContext, Depends(command("tickets:write"))]


OpenTicketBody = body_of(OpenTicket, "OpenTicket")
AssignTicketBody = body_of(AssignTicket, "AssignTicket")
ChangeStatusBody = body_of(ChangeTicketStatus, "ChangeStatus")
CustomerReplyBody = body_of(RecordCustomerReply, "CustomerReply")
ResolveBody = body_of(ResolveTicket, "Resolve")
RateBody = body_of(RateTicket, "Rate")
ReopenBody = body_of(ReopenTicket, "Reopen")


@router.post("", status_code=201, response_model=Created, summary="Open a ticket for a customer")
def open_ticket(body: OpenTicketBody, cmd: Write) -> Response:
    return cmd.created(OpenTicket, body, "tickets")


@router.get("/{ticket_id}", summary="A ticket's current state (ETag: its version)",
            dependencies=[Depends(allow("tickets:read"))])
def get_ticket(ticket_id: TicketId, app: Annotated[CrmApplication, Depends(crm)]) -> Response:
    ticket = app.get(Ticket, ticket_id)
    return json_response(ticket_view(ticket), version=ticket.version)


@router.put("/{ticket_id}/assignee", response_model=Changed, summary="Assign the ticket")
def assign(ticket_id: TicketId, body: AssignTicketBody, cmd: Write) -> Response:
    return cmd.changed(AssignTicket, body, ticket_id=ticket_id)


@router.put("/{ticket_id}/status", response_model=Changed,
            summary="Move between open, in_progress and waiting_customer")
def change_status(ticket_id: TicketId, body: ChangeStatusBody, cmd: Write) -> Response:
    return cmd.changed(ChangeTicketStatus, body, ticket_id=ticket_id)


@router.post("/{ticket_id}/replies", response_model=Changed, summary="Record the customer's reply")
def customer_reply(ticket_id: TicketId, body: CustomerReplyBody, cmd: Write) -> Response:
    return cmd.changed(RecordCustomerReply, body, ticket_id=ticket_id)


@router.post("/{ticket_id}/resolve", response_model=Changed, summary="Resolve the ticket")
def resolve(ticket_id: TicketId, body: ResolveBody, cmd: Write) -> Response:
    return cmd.changed(ResolveTicket, body, ticket_id=ticket_id)


@router.post("/{ticket_id}/rating", response_model=Changed, summary="Record the satisfaction score (1–5)")
def rate(ticket_id: TicketId, body: RateBody, cmd: Write) -> Response:
    return cmd.changed(RateTicket, body, ticket_id=ticket_id)


@router.post("/{ticket_id}/reopen", response_model=Changed, summary="Reopen a resolved or closed ticket")
def reopen(ticket_id: TicketId, body: ReopenBody, cmd: Write) -> Response:
    return cmd.changed(ReopenTicket, body, ticket_id=ticket_id)


@router.post("/{ticket_id}/close", response_model=Changed, summary="Close a resolved ticket")
def close(ticket_id: TicketId, cmd: Write, body: CommandBody | None = None) -> Response:
    return cmd.changed(CloseTicket, body or CommandBody(), ticket_id=ticket_id)
