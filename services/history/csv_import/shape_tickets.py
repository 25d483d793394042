"""Shape `tickets`: one row per service case, as Salesforce's Case (Id, AccountId, Subject, Priority, Status,
Origin, OwnerId, CreatedDate, ClosedDate) or HubSpot's tickets ("Ticket ID", "Ticket name", "Priority",
"Ticket status", "Create date", "Close date", associated company).

Opened at its creation (priority through `[values.priority]`, channel — Origin — through
`[values.ticket_channel]`), assigned to its owner; its Status through `[values.ticket_status]` to one of
open, in_progress, waiting_customer, resolved, closed: a working status is one status change at the
creation, resolved and closed are recorded at the close date (else the creation).
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

from domain.base import CrmAggregate
from domain.ticket import CLOSED, OPEN, RESOLVED, Ticket
from services.history.csv_import.csv_rows import Cells, Row
from domain.external_ids import qualified
from services.history.csv_import.import_session import Session, at_or_after
from services.history.csv_import.mapping import FileSpec

REQUIRED = ("id", "account", "created")
ROLES = ("id", "account", "subject", "priority", "status", "channel", "owner", "created", "closed_date")
STATUSES = {"new": OPEN, "working": "in_progress", "escalated": "in_progress", "closed": CLOSED}
NO_SUBJECT = "(no subject)"


def import_tickets(session: Session, spec: FileSpec, header: list[str], rows: list[Row]) -> None:
    session.each_row(spec, rows, "ticket", lambda cells, record: _ticket(session, cells, record))

def _ticket(session: Session, cells: Cells, ticket_id: UUID) -> Iterator[CrmAggregate]:
    mapping = session.mapping
    customer_id = session.reference("customer", cells.required("account"), cells.column("account"))
    created = cells.required_instant("created").at
    raw_status = cells.text("status")
    status = mapping.values.get("ticket_status", {}).get(raw_status.casefold()) \
        or STATUSES.get(raw_status.casefold(), raw_status or OPEN)
    ticket = Ticket.open(customer_id, cells.text("subject") or NO_SUBJECT, mapping.value("priority",
                                                                                        cells.text("priority")),
                         mapping.value("ticket_channel", cells.text("channel")), session.meta(created),
                         external_id=qualified(mapping.source, cells.required("id")),
                         vocabularies=session.vocabularies)
    if cells.text("owner"):
        ticket.assign(cells.text("owner"), session.meta(created))
    if status in (RESOLVED, CLOSED):
        closed = cells.instant("closed_date")
        at = created if closed is None else at_or_after(closed, created, mapping.timezone)
        ticket.resolve(mapping.defaults["resolution"], session.meta(at))
        if status == CLOSED:
            ticket.close(session.meta(at))
    elif status != OPEN:
        ticket.change_status(status, session.meta(created))
    yield ticket
