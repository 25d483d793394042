"""Service tickets: open, assign, change status, customer replies, resolve, rate, reopen, close; read one."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import Field, StrictInt

from domain.ticket import Ticket
from domain.vocabulary import TICKET_PRIORITIES, TICKET_STATUSES, TOUCH_CHANNELS
from gateways.http.auth import allow
from gateways.http.command_context import CommandContext, command
from gateways.http.deps import crm
from gateways.http.json_body import StrictJsonRoute
from gateways.http.responses import json_response
from gateways.http.schemas import ERRORS, Changed, CommandBody, Created, Name, Text
from gateways.http.serializers import ticket_view
from services.application import CrmApplication

router = APIRouter(prefix="/tickets", tags=["tickets"], responses=ERRORS, route_class=StrictJsonRoute)
Write = Annotated[CommandContext, Depends(command("tickets:write"))]


class OpenTicket(CommandBody):
    customer_id: UUID
    subject: Name
    priority: Literal[TICKET_PRIORITIES] = "normal"  # type: ignore[valid-type]
    channel: Literal[TOUCH_CHANNELS]  # type: ignore[valid-type]


class AssignTicket(CommandBody):
    assignee: Name


class ChangeStatus(CommandBody):
    status: Literal[TICKET_STATUSES]  # type: ignore[valid-type]


class CustomerReply(CommandBody):
    message: Text


class Resolve(CommandBody):
    resolution: Text


class Rate(CommandBody):
    score: Annotated[StrictInt, Field(ge=1, le=5)]
    comment: Text = ""


class Reopen(CommandBody):
    reason: Text


@router.post("", status_code=201, response_model=Created, summary="Open a ticket for a customer")
def open_ticket(body: OpenTicket, cmd: Write) -> Response:
    return cmd.created(body, "tickets", lambda meta: cmd.crm.open_ticket(
        body.customer_id, body.subject, body.priority, body.channel, meta))


@router.get("/{ticket_id}", summary="A ticket's current state (ETag: its version)",
            dependencies=[Depends(allow("tickets:read"))])
def get_ticket(ticket_id: UUID, app: Annotated[CrmApplication, Depends(crm)]) -> Response:
    ticket = app.get(Ticket, ticket_id)
    return json_response(ticket_view(ticket), version=ticket.version)


@router.put("/{ticket_id}/assignee", response_model=Changed, summary="Assign the ticket")
def assign(ticket_id: UUID, body: AssignTicket, cmd: Write) -> Response:
    return cmd.changed(body, ticket_id, lambda meta, expected: cmd.crm.assign_ticket(
        ticket_id, body.assignee, meta, expected_version=expected))


@router.put("/{ticket_id}/status", response_model=Changed,
            summary="Move between open, in_progress and waiting_customer")
def change_status(ticket_id: UUID, body: ChangeStatus, cmd: Write) -> Response:
    return cmd.changed(body, ticket_id, lambda meta, expected: cmd.crm.change_ticket_status(
        ticket_id, body.status, meta, expected_version=expected))


@router.post("/{ticket_id}/replies", response_model=Changed, summary="Record the customer's reply")
def customer_reply(ticket_id: UUID, body: CustomerReply, cmd: Write) -> Response:
    return cmd.changed(body, ticket_id, lambda meta, expected: cmd.crm.record_customer_reply(
        ticket_id, body.message, meta, expected_version=expected))


@router.post("/{ticket_id}/resolve", response_model=Changed, summary="Resolve the ticket")
def resolve(ticket_id: UUID, body: Resolve, cmd: Write) -> Response:
    return cmd.changed(body, ticket_id, lambda meta, expected: cmd.crm.resolve_ticket(
        ticket_id, body.resolution, meta, expected_version=expected))


@router.post("/{ticket_id}/rating", response_model=Changed, summary="Record the satisfaction score (1–5)")
def rate(ticket_id: UUID, body: Rate, cmd: Write) -> Response:
    return cmd.changed(body, ticket_id, lambda meta, expected: cmd.crm.rate_ticket(
        ticket_id, body.score, body.comment, meta, expected_version=expected))


@router.post("/{ticket_id}/reopen", response_model=Changed, summary="Reopen a resolved or closed ticket")
def reopen(ticket_id: UUID, body: Reopen, cmd: Write) -> Response:
    return cmd.changed(body, ticket_id, lambda meta, expected: cmd.crm.reopen_ticket(
        ticket_id, body.reason, meta, expected_version=expected))


@router.post("/{ticket_id}/close", response_model=Changed, summary="Close a resolved ticket")
def close(ticket_id: UUID, cmd: Write, body: CommandBody | None = None) -> Response:
    body = body or CommandBody()
    return cmd.changed(body, ticket_id, lambda meta, expected: cmd.crm.close_ticket(
        ticket_id, meta, expected_version=expected))
