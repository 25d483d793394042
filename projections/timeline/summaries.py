"""What the customer timeline says about each event: one line of text per event class.

Personal data in the text stays sealed (`domain.personal_data.mark`): the timeline's query side opens
it with the log's keys when it is read, so a forgotten person's data reads "(forgotten)" in every entry.
Deal and ticket events are named by their deal's title or ticket's subject, which the read model keeps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.personal_data import mark
from domain.ticket import Ticket


def _note(text: str) -> str:
    return f" ({text})" if text else ""


def _properties(changes: dict[str, str]) -> str:
    """`product=GTX, team removed` (properties are dimensions, not personal data: shown as they are)."""
    return ", ".join(f"{name}={value}" if value else f"{name} removed" for name, value in changes.items())


CUSTOMER_SUMMARIES: dict[type, Callable[[Any], str]] = {
    Customer.Registered: lambda e: f"registered {mark(e.name)}{_note(mark(e.company))} · {e.region} · {e.industry} "
                                   f"· via {e.channel}",
    Customer.ContactDetailsChanged: lambda e: f"contact details changed: email {mark(e.email) or '–'}, "
                                              f"phone {mark(e.phone) or '–'}",
    Customer.TouchLogged: lambda e: f"{e.channel} {e.direction}: {mark(e.summary)}",
    Customer.TagAdded: lambda e: f"tag added: {mark(e.tag)}",
    Customer.TagRemoved: lambda e: f"tag removed: {mark(e.tag)}",
    Customer.PropertiesChanged: lambda e: f"properties: {_properties(e.changes)}",
    Customer.ConsentChanged: lambda e: f"marketing consent {'given' if e.marketing else 'withdrawn'}",
    Customer.Forgotten: lambda e: "forgotten",
}
LEAD_SUMMARIES: dict[type, Callable[[Any], str]] = {
    Lead.Captured: lambda e: f"lead captured: {mark(e.name)}{_note(mark(e.company))} via {e.channel}",
    Lead.Assigned: lambda e: f"lead assigned to {e.owner} ({e.rule})",
    Lead.Contacted: lambda e: f"lead contacted by {e.channel}{_note(mark(e.summary))}",
    Lead.Qualified: lambda e: f"lead qualified{_note(mark(e.note))}",
    Lead.Disqualified: lambda e: f"lead disqualified ({mark(e.reason)})",
    Lead.PropertiesChanged: lambda e: f"lead properties: {_properties(e.changes)}",
    Lead.Converted: lambda e: f"lead converted into this customer, deal {e.deal_id}",
}
DEAL_SUMMARIES: dict[type, Callable[[Any, str], str]] = {  # (event, deal title)
    Deal.Opened: lambda e, title: f"deal opened: {title} · {e.amount} {e.currency} · {e.pipeline}/{e.stage} "
                                  f"· owner {e.owner}",
    Deal.StageChanged: lambda e, title: f"{title}: {e.from_stage} → {e.to_stage}{_note(mark(e.reason))}",
    Deal.AmountChanged: lambda e, title: f"{title}: amount {e.old_amount} → {e.new_amount}",
    Deal.OwnerChanged: lambda e, title: f"{title}: owner {e.old_owner} → {e.new_owner}",
    Deal.PropertiesChanged: lambda e, title: f"{title}: {_properties(e.changes)}",
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
