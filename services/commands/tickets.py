"""Commands on service tickets: open, assign, change status, customer replies, resolve, rate, reopen, close."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StrictInt

from domain.ticket import Ticket
from domain.vocabulary import TICKET_PRIORITIES, TICKET_STATUSES, UNKNOWN
from services.commands.command import Change, ImportableCreation
from services.commands.field_types import Label, Name, Text


@dataclass(frozen=True, slots=True)
class OpenTicket(ImportableCreation):
    customer_id: UUID
    subject: Name
    priority: Literal[TICKET_PRIORITIES] = field(default="normal", kw_only=True)  # type: ignore[valid-type]
    channel: Label = UNKNOWN  # a touch channel of the vocabulary


@dataclass(frozen=True, slots=True)
class TicketChange(Change):
    aggregate, address = Ticket, "ticket_id"
    ticket_id: UUID


@dataclass(frozen=True, slots=True)
class AssignTicket(TicketChange):
    assignee: Name


@dataclass(frozen=True, slots=True)
class ChangeTicketStatus(TicketChange):
    """Move between open, in_progress and waiting_customer."""

    status: Literal[TICKET_STATUSES]  # type: ignore[valid-type]


@dataclass(frozen=True, slots=True)
class RecordCustomerReply(TicketChange):
    message: Text


@dataclass(frozen=True, slots=True)
class ResolveTicket(TicketChange):
    resolution: Text


@dataclass(frozen=True, slots=True)
class RateTicket(TicketChange):
    score: Annotated[StrictInt, Field(ge=1, le=5)]
    comment: Text = ""


@dataclass(frozen=True, slots=True)
class ReopenTicket(TicketChange):
    reason: Text


@dataclass(frozen=True, slots=True)
class CloseTicket(TicketChange):
    pass
