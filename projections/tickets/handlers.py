"""The write side of the service-ticket read model: its tables, and the handlers turning ticket and deal
events into typed rows (`projections.tickets.rows`).

A ticket's status and assignee become versions `[valid_from, valid_to)`, each resolution an interval
`[resolved_at, reopened_at)`, each rating and each won deal a dated row, all in business time, so that
`projections.tickets.queries` can answer every figure as of any instant T from the rows begun by T.
What answers a ticket is `domain.service_levels.responds`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.customer import Customer
from domain.deal import Deal
from domain.personal_data import mark
from domain.service_levels import responds
from domain.ticket import CLOSED, OPEN, RESOLVED, Ticket
from projections.read_model import ReadModel, Rows
from projections.tables import Table, micros
from projections.tickets.ticket_tallies import SUMMED_TABLES, pending, refresh
from projections.tickets.rows import (CurrentPropertyRow, CustomerRow, DealRow, PropertyRow, RatingRow, ResolutionRow,
                                      TicketRow, VersionRow, WinRow)

TICKETS = Table(
    "tickets_tickets",
    (("ticket_id", "TEXT"), ("customer_id", "TEXT"), ("priority", "TEXT"), ("subject", "TEXT"),
     ("opened_at", "BIGINT"), ("first_response_at", "BIGINT"), ("first_resolved_at", "BIGINT"),
     ("status", "TEXT"), ("assignee", "TEXT"), ("version_seq", "INTEGER"), ("version_from", "BIGINT"),
     ("resolution_seq", "INTEGER"), ("resolved_at", "BIGINT")),
    ("ticket_id",),
    indexes=(("opened_at",),), row_type=TicketRow,
)
VERSIONS = Table(
    "tickets_versions",
    (("ticket_id", "TEXT"), ("seq", "INTEGER"), ("status", "TEXT"), ("assignee", "TEXT"),
     ("valid_from", "BIGINT"), ("valid_to", "BIGINT")),
    ("ticket_id", "seq"), row_type=VersionRow,
)
RESOLUTIONS = Table(
    "tickets_resolutions",
    (("ticket_id", "TEXT"), ("seq", "INTEGER"), ("resolved_at", "BIGINT"), ("reopened_at", "BIGINT")),
    ("ticket_id", "seq"), row_type=ResolutionRow,
)
RATINGS = Table(
    "tickets_ratings",
    (("ticket_id", "TEXT"), ("seq", "INTEGER"), ("customer_id", "TEXT"), ("assignee", "TEXT"),
     ("score", "INTEGER"), ("rated_at", "BIGINT")),
    ("ticket_id", "seq"),
    indexes=(("rated_at",), ("customer_id",)), row_type=RatingRow,  # customer_id: a customer's ratings (ticket_tallies)
)
DEALS = Table("tickets_deals", (("deal_id", "TEXT"), ("customer_id", "TEXT")), ("deal_id",), row_type=DealRow)
WINS = Table(
    "tickets_wins",
    (("deal_id", "TEXT"), ("seq", "INTEGER"), ("customer_id", "TEXT"), ("won_at", "BIGINT")),
    ("deal_id", "seq"),
    indexes=(("won_at",), ("customer_id",)), row_type=WinRow,
)

# The customers' dimensions and properties, versioned as of any instant (as the funnel keeps its own), so
# that the report can be grouped and filtered by them (`projections.tickets.ticket_dimensions`).
CUSTOMERS = Table(
    "tickets_customers",
    (("customer_id", "TEXT"), ("region", "TEXT"), ("industry", "TEXT"), ("channel", "TEXT")),
    ("customer_id",), row_type=CustomerRow,
)
PROPERTIES = Table(
    "tickets_properties",
    (("customer_id", "TEXT"), ("name", "TEXT"), ("seq", "INTEGER"), ("value", "TEXT"), ("valid_from", "BIGINT"),
     ("valid_to", "BIGINT")),
    ("customer_id", "name", "seq"), row_type=PropertyRow,
)
CURRENT_PROPERTIES = Table(
    "tickets_current_properties",
    (("customer_id", "TEXT"), ("name", "TEXT"), ("seq", "INTEGER"), ("value", "TEXT"), ("valid_from", "BIGINT")),
    ("customer_id", "name"), row_type=CurrentPropertyRow,
)


class TicketsReadModel(ReadModel):
    """Service tickets in business time, plus the deal wins that turn satisfied customers loyal."""

    name = "tickets"
    tables = (TICKETS, VERSIONS, RESOLUTIONS, RATINGS, DEALS, WINS, CUSTOMERS, PROPERTIES, CURRENT_PROPERTIES,
              *SUMMED_TABLES)

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return {
            Ticket.Opened: _opened,
            Ticket.Assigned: _assigned,
            Ticket.StatusChanged: _status_changed,
            Ticket.Resolved: _resolved,
            Ticket.Reopened: _reopened,
            Ticket.Closed: _closed,
            Ticket.SatisfactionRated: _rated,
            Deal.Opened: _deal_opened,
            Deal.Won: _deal_won,
            Customer.Registered: _registered,
            Customer.PropertiesChanged: _properties_changed,
        }

    def prefetch(self, events: list[Any], rows: Rows) -> None:
        rows.prefetch(TICKETS, [(str(e.originator_id),) for e in events
                                if isinstance(e, Ticket.Event) and not isinstance(e, Ticket.Opened)])
        rows.prefetch(DEALS, [(str(e.originator_id),) for e in events if isinstance(e, Deal.Won)])
        rows.prefetch(CURRENT_PROPERTIES, [(str(e.originator_id), name) for e in events
                                           if isinstance(e, Customer.PropertiesChanged) for name in e.changes])

    def finish(self, rows: Rows) -> None:
        refresh(rows)


def _opened(event: Ticket.Opened, rows: Rows) -> None:
    at = micros(event.occurred_at)
    ticket = TicketRow(
        ticket_id=str(event.originator_id), customer_id=str(event.customer_id), priority=event.priority,
        subject=mark(event.subject), opened_at=at, first_response_at=None, first_resolved_at=None,
        status=OPEN, assignee=None, version_seq=event.originator_version, version_from=at,
        resolution_seq=None, resolved_at=None,
    )
    rows.put(TICKETS, ticket)
    rows.put(VERSIONS, _version(ticket, valid_to=None))
    pending(rows).tickets.add(ticket.ticket_id)


def _assigned(event: Ticket.Assigned, rows: Rows) -> None:
    _new_version(_ticket(event, rows), event, rows, assignee=event.assignee)


def _status_changed(event: Ticket.StatusChanged, rows: Rows) -> None:
    _new_version(_responded(_ticket(event, rows), event), event, rows, status=event.to_status)


def _resolved(event: Ticket.Resolved, rows: Rows) -> None:
    ticket = _responded(_ticket(event, rows), event)
    at = micros(event.occurred_at)
    first_resolved_at = at if ticket.first_resolved_at is None else ticket.first_resolved_at
    ticket = ticket._replace(first_resolved_at=first_resolved_at, resolution_seq=event.originator_version,
                             resolved_at=at)
    rows.put(RESOLUTIONS, _resolution(ticket, reopened_at=None))
    _new_version(ticket, event, rows, status=RESOLVED)


def _reopened(event: Ticket.Reopened, rows: Rows) -> None:
    ticket = _ticket(event, rows)
    rows.put(RESOLUTIONS, _resolution(ticket, reopened_at=micros(event.occurred_at)))
    _new_version(ticket._replace(resolution_seq=None, resolved_at=None), event, rows, status=OPEN)


def _closed(event: Ticket.Closed, rows: Rows) -> None:
    _new_version(_ticket(event, rows), event, rows, status=CLOSED)


def _rated(event: Ticket.SatisfactionRated, rows: Rows) -> None:
    ticket = _ticket(event, rows)
    rows.put(RATINGS, RatingRow(ticket.ticket_id, event.originator_version, ticket.customer_id, ticket.assignee,
                                event.score, micros(event.occurred_at)))
    pending(rows).customers.add(ticket.customer_id)


def _deal_opened(event: Deal.Opened, rows: Rows) -> None:
    rows.put(DEALS, DealRow(str(event.originator_id), str(event.customer_id)))


def _deal_won(event: Deal.Won, rows: Rows) -> None:
    deal: DealRow | None = rows.get(DEALS, str(event.originator_id))
    assert deal is not None, f"deal {event.originator_id} was won before it was opened"
    rows.put(WINS, WinRow(deal.deal_id, event.originator_version, deal.customer_id, micros(event.occurred_at)))
    pending(rows).customers.add(deal.customer_id)


def _registered(event: Customer.Registered, rows: Rows) -> None:
    rows.put(CUSTOMERS, CustomerRow(str(event.originator_id), event.region, event.industry, event.channel))


def _properties_changed(event: Customer.PropertiesChanged, rows: Rows) -> None:
    """End each changed property's open version at the event and open the new one (none for a removal, "")."""
    customer, at, seq = str(event.originator_id), micros(event.occurred_at), event.originator_version
    for name, value in event.changes.items():
        current: CurrentPropertyRow | None = rows.get(CURRENT_PROPERTIES, customer, name)
        if (current.value if current is not None else "") == value:
            continue  # unchanged (an imported history may say so twice)
        if current is not None and current.value:
            rows.put(PROPERTIES, PropertyRow(*current, valid_to=at))
        now = CurrentPropertyRow(customer, name, seq, value, at)
        rows.put(CURRENT_PROPERTIES, now)
        if value:
            rows.put(PROPERTIES, PropertyRow(*now, valid_to=None))


def _ticket(event: Any, rows: Rows) -> TicketRow:
    """The ticket an event changes, to be derived again at the end of the batch (`ticket_tallies.refresh`)."""
    ticket: TicketRow | None = rows.get(TICKETS, str(event.originator_id))
    assert ticket is not None, f"ticket {event.originator_id} changed before it was opened"
    pending(rows).tickets.add(ticket.ticket_id)
    return ticket


def _responded(ticket: TicketRow, event: Ticket.Event) -> TicketRow:
    """The ticket, answered at the event if it is the first answer."""
    if ticket.first_response_at is None and responds(event):
        return ticket._replace(first_response_at=micros(event.occurred_at))
    return ticket


def _new_version(ticket: TicketRow, event: Any, rows: Rows, **changes: Any) -> None:
    """End the ticket's current status/assignee version at the event and begin one with `changes`."""
    at = micros(event.occurred_at)
    rows.put(VERSIONS, _version(ticket, valid_to=at))
    ticket = ticket._replace(**changes, version_seq=event.originator_version, version_from=at)
    rows.put(VERSIONS, _version(ticket, valid_to=None))
    rows.put(TICKETS, ticket)


def _version(ticket: TicketRow, valid_to: int | None) -> VersionRow:
    return VersionRow(ticket.ticket_id, ticket.version_seq, ticket.status, ticket.assignee, ticket.version_from,
                      valid_to)


def _resolution(ticket: TicketRow, reopened_at: int | None) -> ResolutionRow:
    """The ticket's standing resolution (there is one: only a resolved or closed ticket is reopened)."""
    seq, resolved_at = ticket.resolution_seq, ticket.resolved_at
    return ResolutionRow(ticket.ticket_id, seq, resolved_at, reopened_at)  # type: ignore[arg-type]

