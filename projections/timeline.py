"""The customer timeline read model: every event about a customer, in business-time order.

Each event becomes one entry filed under its owner: the customer, or the lead it concerns. A lead's
entries join its customer's timeline from the instant the lead converts, so lead events recorded before
the conversion appear once it happens. Entries are numbered in log order, which breaks ties between
entries of the same instant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.ticket import Ticket
from projections.base import ReadModel, Rows
from projections.tables import Table, from_micros, micros
from domain.personal_data import mark
from projections.ports import Store, Unseal

END_OF_TIME = 2**63 - 1

CUSTOMERS = Table("timeline_customers", (("customer_id", "TEXT"), ("registered_at", "BIGINT")), ("customer_id",))
LEADS = Table(
    "timeline_leads",
    (("lead_id", "TEXT"), ("customer_id", "TEXT"), ("converted_at", "BIGINT")),
    ("lead_id",),
    indexes=(("customer_id",),),
)
DEALS = Table("timeline_deals", (("deal_id", "TEXT"), ("customer_id", "TEXT"), ("title", "TEXT")), ("deal_id",))
TICKETS = Table(
    "timeline_tickets", (("ticket_id", "TEXT"), ("customer_id", "TEXT"), ("subject", "TEXT")), ("ticket_id",)
)
CAMPAIGNS = Table("timeline_campaigns", (("campaign_id", "TEXT"), ("name", "TEXT")), ("campaign_id",))
ENTRIES = Table(
    "timeline_entries",
    (("owner_id", "TEXT"), ("position", "BIGINT"), ("occurred_at", "BIGINT"), ("kind", "TEXT"), ("actor", "TEXT"),
     ("summary", "TEXT"), ("subject_id", "TEXT")),
    ("owner_id", "position"),
)
COUNTER = Table("timeline_counter", (("name", "TEXT"), ("position", "BIGINT")), ("name",))


def _note(text: str) -> str:
    return f" ({text})" if text else ""


CUSTOMER_SUMMARIES: dict[type, Callable[[Any], str]] = {
    Customer.Registered: lambda e: f"registered {mark(e.name)}{_note(mark(e.company))} · {e.region} · {e.industry} "
                                   f"· via {e.channel}",
    Customer.ContactDetailsChanged: lambda e: f"contact details changed: email {mark(e.email) or '–'}, "
                                              f"phone {mark(e.phone) or '–'}",
    Customer.TouchLogged: lambda e: f"{e.channel} {e.direction}: {mark(e.summary)}",
    Customer.TagAdded: lambda e: f"tag added: {mark(e.tag)}",
    Customer.TagRemoved: lambda e: f"tag removed: {mark(e.tag)}",
    Customer.ConsentChanged: lambda e: f"marketing consent {'given' if e.marketing else 'withdrawn'}",
    Customer.Forgotten: lambda e: "forgotten",
}
LEAD_SUMMARIES: dict[type, Callable[[Any], str]] = {
    Lead.Captured: lambda e: f"lead captured: {mark(e.name)}{_note(mark(e.company))} via {e.channel}",
    Lead.Assigned: lambda e: f"lead assigned to {e.owner} ({e.rule})",
    Lead.Contacted: lambda e: f"lead contacted by {e.channel}{_note(mark(e.summary))}",
    Lead.Qualified: lambda e: f"lead qualified{_note(mark(e.note))}",
    Lead.Disqualified: lambda e: f"lead disqualified ({mark(e.reason)})",
    Lead.Converted: lambda e: f"lead converted into this customer, deal {e.deal_id}",
}
DEAL_SUMMARIES: dict[type, Callable[[Any, str], str]] = {  # (event, deal title)
    Deal.Opened: lambda e, title: f"deal opened: {title} · {e.amount} {e.currency} · {e.pipeline}/{e.stage} "
                                  f"· owner {e.owner}",
    Deal.StageChanged: lambda e, title: f"{title}: {e.from_stage} → {e.to_stage}{_note(mark(e.reason))}",
    Deal.AmountChanged: lambda e, title: f"{title}: amount {e.old_amount} → {e.new_amount}",
    Deal.OwnerChanged: lambda e, title: f"{title}: owner {e.old_owner} → {e.new_owner}",
    Deal.Won: lambda e, title: f"{title}: {e.from_stage} → won{_note(mark(e.note))}",
    Deal.Lost: lambda e, title: f"{title}: {e.from_stage} → lost ({mark(e.reason)})",
    Deal.Reopened: lambda e, title: f"{title}: reopened in {e.stage} ({mark(e.reason)})",
}
TICKET_SUMMARIES: dict[type, Callable[[Any, str], str]] = {  # (event, ticket subject)
    Ticket.Opened: lambda e, subject: f"ticket opened: {subject} · {e.priority} · via {e.channel}",
    Ticket.Assigned: lambda e, subject: f"{subject}: assigned to {e.assignee}",
    Ticket.StatusChanged: lambda e, subject: f"{subject}: {e.from_status} → {e.to_status}",
    Ticket.CustomerReplied: lambda e, subject: f"{subject}: customer replied ({mark(e.message)})",
    Ticket.Resolved: lambda e, subject: f"{subject}: resolved ({mark(e.resolution)})",
    Ticket.SatisfactionRated: lambda e, subject: f"{subject}: rated {e.score}/5{_note(mark(e.comment))}",
    Ticket.Reopened: lambda e, subject: f"{subject}: reopened ({mark(e.reason)})",
    Ticket.Closed: lambda e, subject: f"{subject}: closed",
}


class TimelineReadModel(ReadModel):
    """One dated entry per event about a customer, its leads, deals, tickets and campaign responses."""

    name = "timeline"
    tables = (CUSTOMERS, LEADS, DEALS, TICKETS, CAMPAIGNS, ENTRIES, COUNTER)

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        handlers: dict[type, Callable[[Any, Rows], None]] = {
            Campaign.Planned: _campaign_planned,
            Campaign.ResponseRecorded: _campaign_response,
        }
        handlers.update(dict.fromkeys(CUSTOMER_SUMMARIES, _customer_event))
        handlers.update(dict.fromkeys(LEAD_SUMMARIES, _lead_event))
        handlers.update(dict.fromkeys(DEAL_SUMMARIES, _deal_event))
        handlers.update(dict.fromkeys(TICKET_SUMMARIES, _ticket_event))
        return handlers

    def prefetch(self, events: list[Any], rows: Rows) -> None:
        for table, event_class, opening in ((DEALS, Deal.Event, Deal.Opened), (TICKETS, Ticket.Event, Ticket.Opened)):
            rows.prefetch(table, [(str(e.originator_id),) for e in events
                                  if isinstance(e, event_class) and not isinstance(e, opening)])
        rows.prefetch(CAMPAIGNS, [(str(e.originator_id),) for e in events if isinstance(e, Campaign.ResponseRecorded)])
        rows.prefetch(COUNTER, [("entries",)])


def _customer_event(event: Any, rows: Rows) -> None:
    if isinstance(event, Customer.Registered):
        rows.put(CUSTOMERS, {"customer_id": str(event.originator_id), "registered_at": micros(event.occurred_at)})
    _add_entry(rows, event, event.originator_id, CUSTOMER_SUMMARIES[type(event)](event))


def _lead_event(event: Any, rows: Rows) -> None:
    if isinstance(event, Lead.Converted):
        rows.put(LEADS, {"lead_id": str(event.originator_id), "customer_id": str(event.customer_id),
                         "converted_at": micros(event.occurred_at)})
    _add_entry(rows, event, event.originator_id, LEAD_SUMMARIES[type(event)](event))


def _deal_event(event: Any, rows: Rows) -> None:
    if isinstance(event, Deal.Opened):
        rows.put(DEALS, {"deal_id": str(event.originator_id), "customer_id": str(event.customer_id),
                         "title": mark(event.title)})
    deal = _known(rows, DEALS, event)
    _add_entry(rows, event, deal["customer_id"], DEAL_SUMMARIES[type(event)](event, deal["title"]))


def _ticket_event(event: Any, rows: Rows) -> None:
    if isinstance(event, Ticket.Opened):
        rows.put(TICKETS, {"ticket_id": str(event.originator_id), "customer_id": str(event.customer_id),
                           "subject": mark(event.subject)})
    ticket = _known(rows, TICKETS, event)
    _add_entry(rows, event, ticket["customer_id"], TICKET_SUMMARIES[type(event)](event, ticket["subject"]))


def _campaign_planned(event: Campaign.Planned, rows: Rows) -> None:
    rows.put(CAMPAIGNS, {"campaign_id": str(event.originator_id), "name": event.name})


def _campaign_response(event: Campaign.ResponseRecorded, rows: Rows) -> None:
    """Filed under the customer it names, else under the lead (shown once that lead converts)."""
    campaign = _known(rows, CAMPAIGNS, event)
    _add_entry(rows, event, event.customer_id or event.lead_id, f"campaign {campaign['name']}: {event.kind}")


def _known(rows: Rows, table: Table, event: Any) -> dict[str, Any]:
    row = rows.get(table, str(event.originator_id))
    assert row is not None, f"{event.originator_id} changed before it was created"
    return row


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _add_entry(rows: Rows, event: Any, owner_id: Any, summary: str) -> None:
    counter = rows.get(COUNTER, "entries") or {"name": "entries", "position": 0}
    counter["position"] += 1
    rows.put(COUNTER, counter)
    rows.put(ENTRIES, {"owner_id": str(owner_id), "position": counter["position"],
                       "occurred_at": micros(event.occurred_at), "kind": type(event).__qualname__,
                       "actor": event.actor, "summary": _one_line(summary),
                       "subject_id": str(event.originator_id)})


# --- queries --------------------------------------------------------------------------------------


class UnknownCustomer(LookupError):
    """No customer with that id had been registered by the instant asked about."""


@dataclass(frozen=True)
class TimelineEntry:
    occurred_at: datetime
    kind: str
    actor: str
    summary: str
    subject_id: UUID

    def to_dict(self) -> dict[str, Any]:
        return {"occurred_at": self.occurred_at.isoformat(), "kind": self.kind, "actor": self.actor,
                "summary": self.summary, "subject_id": str(self.subject_id)}


@dataclass(frozen=True)
class Timeline:
    customer_id: UUID
    as_of: datetime | None
    total: int  # entries up to `as_of`, of which `entries` is the page from `offset`
    offset: int
    entries: list[TimelineEntry]

    def to_dict(self) -> dict[str, Any]:
        return {"customer_id": str(self.customer_id), "as_of": self.as_of.isoformat() if self.as_of else None,
                "total": self.total, "offset": self.offset, "entries": [e.to_dict() for e in self.entries]}


class TimelineQueries:
    """A customer's timeline as of an instant, from the timeline read model.

    Entries keep personal data sealed; it is opened here with the log's keys (`unseal`, e.g. the key store's
    `unseal_marks`), so a forgotten person's data reads "(forgotten)" however old the entry.
    """

    COLUMNS = "e.occurred_at, e.kind, e.actor, e.summary, e.subject_id"

    def __init__(self, store: Store, unseal: Unseal) -> None:
        self.store = store
        self.unseal = unseal

    def timeline(self, customer_id: UUID, as_of: datetime | None = None, limit: int = 100,
                 offset: int = 0) -> Timeline:
        """Entries ordered by business time, then log position; only those at or before `as_of`."""
        t = END_OF_TIME if as_of is None else micros(as_of)
        if not self.store.query("SELECT 1 FROM timeline_customers WHERE customer_id = ? AND registered_at <= ?",
                                [str(customer_id), t]):
            raise UnknownCustomer(f"no customer with id {customer_id}"
                                  + (f" as of {as_of.isoformat()}" if as_of else ""))
        owners = [str(customer_id), *(lead for (lead,) in self.store.query(
            "SELECT lead_id FROM timeline_leads WHERE customer_id = ? AND converted_at <= ?", [str(customer_id), t]))]
        scope = f"FROM timeline_entries e WHERE e.occurred_at <= ? AND e.owner_id IN ({', '.join('?' * len(owners))})"
        (total,) = self.store.query(f"SELECT COUNT(*) {scope}", [t, *owners])[0]
        rows = self.store.query(f"SELECT {self.COLUMNS} {scope} ORDER BY e.occurred_at, e.position LIMIT ? OFFSET ?",
                                [t, *owners, limit, offset])
        return Timeline(customer_id, as_of, int(total), offset, [self._entry(row) for row in rows])

    def summary(self, as_of: datetime) -> dict[str, Any]:
        """Every customer's whole timeline as of `as_of`, JSON-able (one query for all of them)."""
        t = micros(as_of)
        timelines: dict[str, list[dict[str, Any]]] = {
            customer_id: [] for (customer_id,) in self.store.query(
                "SELECT customer_id FROM timeline_customers WHERE registered_at <= ? ORDER BY customer_id", [t])}
        for customer_id, *row in self.store.query(
            f"SELECT COALESCE(l.customer_id, e.owner_id), {self.COLUMNS} FROM timeline_entries e "
            "LEFT JOIN timeline_leads l ON l.lead_id = e.owner_id AND l.converted_at <= ? "
            "WHERE e.occurred_at <= ? ORDER BY e.occurred_at, e.position", [t, t]
        ):
            if customer_id in timelines:
                timelines[customer_id].append(self._entry(row).to_dict())
        return timelines


    def _entry(self, row: Any) -> TimelineEntry:
        at, kind, actor, summary, subject = row
        return TimelineEntry(from_micros(at), kind, actor, _one_line(self.unseal(summary)), UUID(subject))
