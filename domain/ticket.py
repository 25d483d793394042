"""After-sales service tickets: status, assignment, resolution, satisfaction (CSAT 1-5)."""

from __future__ import annotations

from uuid import UUID

from domain.base import CrmAggregate, Meta, require_choice, require_text
from domain.errors import DomainError
from domain.external_ids import record_id
from domain.partitions import partition_of
from domain.vocabulary import (DEFAULT_VOCABULARIES, TICKET_PRIORITIES, TICKET_STATUSES, TOUCH_CHANNEL,
                               Vocabularies)

OPEN = "open"  # new, or reopened: waiting for an answer
WORKING_STATUSES = (OPEN, "in_progress", "waiting_customer")
RESOLVED, CLOSED = "resolved", "closed"


# The rules on a ticket's state, as functions of that state: the commands below and `crm import`'s checks
# (`services.history.rules.ticket_lifecycle`, on a compact state per ticket) both call them.

def require_working(status: str, action: str) -> None:
    if status not in WORKING_STATUSES:
        raise DomainError(f"cannot {action} a {status} ticket; reopen it first")


def require_status_change(status: str, to_status: str) -> None:
    """Between working statuses only; resolving, reopening and closing have their own commands."""
    require_choice(to_status, TICKET_STATUSES, "ticket status")
    require_working(status, "change the status of")
    if to_status not in WORKING_STATUSES:
        raise DomainError(f"use resolve/close for status {to_status!r}")
    if to_status == status:
        raise DomainError(f"ticket is already {to_status}")


def require_not_closed(status: str) -> None:
    if status == CLOSED:
        raise DomainError("ticket is closed; reopen it to continue the conversation")


def require_score(score: int) -> int:
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise DomainError(f"satisfaction score must be an integer from 1 to 5 (got {score!r})")
    return score


def require_rateable(status: str, rated: bool) -> None:
    if status not in (RESOLVED, CLOSED):
        raise DomainError("a ticket is rated only after it is resolved")
    if rated:
        raise DomainError("this resolution has already been rated")


def require_reopenable(status: str) -> None:
    if status not in (RESOLVED, CLOSED):
        raise DomainError(f"only a resolved or closed ticket can be reopened; this one is {status}")


def require_closable(status: str) -> None:
    if status != RESOLVED:
        raise DomainError(f"only a resolved ticket can be closed; this one is {status}")


class Ticket(CrmAggregate):
    class Opened(CrmAggregate.Created):
        """Version 2 added `external_id` ("<source>:<id>" of the record it was imported from; "" when none)."""

        class_version = 2
        customer_id: UUID
        subject: str
        priority: str
        channel: str
        external_id: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["external_id"] = ""

        def apply(self, ticket: Ticket) -> None:
            ticket.customer_id = self.customer_id
            ticket.subject = self.subject
            ticket.priority = self.priority
            ticket.channel = self.channel
            ticket.external_id = self.external_id
            ticket.status = OPEN
            ticket.assignee = None
            ticket.rated = False

    class Assigned(CrmAggregate.Event):
        assignee: str

        def apply(self, ticket: Ticket) -> None:
            ticket.assignee = self.assignee

    class StatusChanged(CrmAggregate.Event):
        from_status: str
        to_status: str

        def apply(self, ticket: Ticket) -> None:
            ticket.status = self.to_status

    class CustomerReplied(CrmAggregate.Event):
        message: str

    class Resolved(CrmAggregate.Event):
        resolution: str

        def apply(self, ticket: Ticket) -> None:
            ticket.status = RESOLVED

    class SatisfactionRated(CrmAggregate.Event):
        score: int
        comment: str

        def apply(self, ticket: Ticket) -> None:
            ticket.rated = True

    class Reopened(CrmAggregate.Event):
        reason: str

        def apply(self, ticket: Ticket) -> None:
            ticket.status = OPEN
            ticket.rated = False

    class Closed(CrmAggregate.Event):
        def apply(self, ticket: Ticket) -> None:
            ticket.status = CLOSED

    @classmethod
    def open(
        cls,
        customer_id: UUID,
        subject: str,
        priority: str,
        channel: str | None,
        meta: Meta,
        *,
        external_id: str = "",
        id: UUID | None = None,  # noqa: A002
        vocabularies: Vocabularies = DEFAULT_VOCABULARIES,
    ) -> Ticket:
        """Its channel is one of the touch channels (`unknown` when absent)."""
        return cls._open(
            cls.Opened,
            meta,
            id=record_id("ticket", external_id, id, partition_of(customer_id)),  # in its customer's home partition
            customer_id=customer_id,
            subject=require_text(subject, "ticket subject"),
            priority=require_choice(priority, TICKET_PRIORITIES, "priority"),
            channel=vocabularies[TOUCH_CHANNEL].check(channel, "channel"),
            external_id=external_id,
        )

    def _require_working(self, action: str) -> None:
        require_working(self.status, action)

    def assign(self, assignee: str, meta: Meta) -> None:
        self._require_working("assign")
        assignee = require_text(assignee, "assignee")
        if assignee == self.assignee:
            raise DomainError(f"ticket is already assigned to {assignee!r}")
        self._record(self.Assigned, meta, assignee=assignee)

    def change_status(self, to_status: str, meta: Meta) -> None:
        """Move between working statuses; resolving, reopening and closing have their own commands."""
        require_status_change(self.status, to_status)
        self._record(self.StatusChanged, meta, from_status=self.status, to_status=to_status)

    def customer_replied(self, message: str, meta: Meta) -> None:
        require_not_closed(self.status)
        self._record(self.CustomerReplied, meta, message=require_text(message, "message"))

    def resolve(self, resolution: str, meta: Meta) -> None:
        self._require_working("resolve")
        self._record(self.Resolved, meta, resolution=require_text(resolution, "resolution"))

    def rate(self, score: int, comment: str, meta: Meta) -> None:
        require_score(score)
        require_rateable(self.status, self.rated)
        self._record(self.SatisfactionRated, meta, score=score, comment=comment)

    def reopen(self, reason: str, meta: Meta) -> None:
        require_reopenable(self.status)
        self._record(self.Reopened, meta, reason=require_text(reason, "reopen reason"))

    def close(self, meta: Meta) -> None:
        require_closable(self.status)
        self._record(self.Closed, meta)
