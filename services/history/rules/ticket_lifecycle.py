"""`crm import`'s checks of a ticket's events: working, resolved, closed and rated as `domain.ticket`'s rules
require, the status it left is the one it had, and its customer exists."""

from __future__ import annotations

import sys
from collections.abc import Callable

from domain import ticket as ticket_rules
from domain.customer import Customer
from domain.ticket import Ticket
from services.history.rules.lifecycle import Engine, Rule, require_same
from services.history.rules.tracked import Tracked


def _opened(rules: Engine, ticket: Tracked, customer_id: int, external_id: str) -> None:
    rules.refer("customer_id", Customer, customer_id)
    rules.claim(Ticket, external_id)
    ticket.status = ticket_rules.OPEN


def _working(action: str, status: str | None = None) -> Callable[..., None]:
    def step(rules: Engine, ticket: Tracked) -> None:
        ticket_rules.require_working(ticket.status, action)
        ticket.status = status or ticket.status
    return step


def _status_changed(rules: Engine, ticket: Tracked, from_status: str, to_status: str) -> None:
    ticket_rules.require_status_change(ticket.status, to_status)
    require_same("from_status", from_status, ticket.status, "ticket's status")
    ticket.status = sys.intern(to_status)


def _replied(rules: Engine, ticket: Tracked) -> None:
    ticket_rules.require_not_closed(ticket.status)


def _rated(rules: Engine, ticket: Tracked) -> None:
    ticket_rules.require_rateable(ticket.status, ticket.rated)
    ticket.rated = True


def _reopened(rules: Engine, ticket: Tracked) -> None:
    ticket_rules.require_reopenable(ticket.status)
    ticket.status, ticket.rated = ticket_rules.OPEN, False


def _closed(rules: Engine, ticket: Tracked) -> None:
    ticket_rules.require_closable(ticket.status)
    ticket.status = ticket_rules.CLOSED


RULES: dict[type, Rule] = {
    Ticket.Opened: _opened,
    Ticket.Assigned: _working("assign"),
    Ticket.StatusChanged: _status_changed,
    Ticket.CustomerReplied: _replied,
    Ticket.Resolved: _working("resolve", ticket_rules.RESOLVED),
    Ticket.SatisfactionRated: _rated,
    Ticket.Reopened: _reopened,
    Ticket.Closed: _closed,
}
