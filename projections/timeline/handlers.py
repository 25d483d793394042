"""The customer timeline read model's write side: every event about a customer becomes one entry.

Each event becomes one entry filed under its owner: the customer, or the lead it concerns. A lead's
entries join its customer's timeline from the instant the lead converts, so lead events recorded before
the conversion appear once it happens. Entries of the same instant are ordered by when the log recorded
their events, then by subject and version — not by a counter in log order, which projectors fed partition
by partition in any interleaving could not agree on. What an entry says comes from `summaries`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.personal_data import mark
from domain.ticket import Ticket
from projections.read_model import ReadModel, Rows
from projections.tables import Table, micros
from projections.timeline.rows import (CAMPAIGNS, CUSTOMERS, DEALS, ENTRIES, LEADS, TABLES, TICKETS, CampaignRow,
                                       CustomerRow, DealRow, EntryRow, LeadRow, TicketRow, one_line)
from projections.timeline.summaries import CUSTOMER_SUMMARIES, DEAL_SUMMARIES, LEAD_SUMMARIES, TICKET_SUMMARIES


class TimelineReadModel(ReadModel):
    """One dated entry per event about a customer, its leads, deals, tickets and campaign responses."""

    name = "timeline"
    tables = TABLES

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        handlers: dict[type, Callable[[Any, Rows], None]] = {
            Campaign.Planned: _campaign_planned,
            Campaign.ResponseRecorded: _campaign_response,
            Lead.RespondedToCampaign: _responded, Customer.RespondedToCampaign: _responded,
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
        rows.prefetch(CAMPAIGNS, [(str(e.originator_id),) for e in events if isinstance(e, Campaign.ResponseRecorded)]
                      + [(str(e.campaign_id),) for e in events if isinstance(e, RESPONDED)])


def _customer_event(event: Any, rows: Rows) -> None:
    if isinstance(event, Customer.Registered):
        rows.put(CUSTOMERS, CustomerRow(customer_id=str(event.originator_id), registered_at=micros(event.occurred_at)))
    _add_entry(rows, event, event.originator_id, CUSTOMER_SUMMARIES[type(event)](event))


def _lead_event(event: Any, rows: Rows) -> None:
    if isinstance(event, Lead.Converted):
        rows.put(LEADS, LeadRow(lead_id=str(event.originator_id), customer_id=str(event.customer_id),
                                converted_at=micros(event.occurred_at)))
    _add_entry(rows, event, event.originator_id, LEAD_SUMMARIES[type(event)](event))


def _deal_event(event: Any, rows: Rows) -> None:
    if isinstance(event, Deal.Opened):
        rows.put(DEALS, DealRow(deal_id=str(event.originator_id), customer_id=str(event.customer_id),
                                title=mark(event.title)))
    deal = _known(rows, DEALS, event)
    _add_entry(rows, event, deal["customer_id"], DEAL_SUMMARIES[type(event)](event, deal["title"]))


def _ticket_event(event: Any, rows: Rows) -> None:
    if isinstance(event, Ticket.Opened):
        rows.put(TICKETS, TicketRow(ticket_id=str(event.originator_id), customer_id=str(event.customer_id),
                                    subject=mark(event.subject)))
    ticket = _known(rows, TICKETS, event)
    _add_entry(rows, event, ticket["customer_id"], TICKET_SUMMARIES[type(event)](event, ticket["subject"]))


def _campaign_planned(event: Campaign.Planned, rows: Rows) -> None:
    rows.put(CAMPAIGNS, CampaignRow(campaign_id=str(event.originator_id), name=event.name))


def _campaign_response(event: Campaign.ResponseRecorded, rows: Rows) -> None:
    """Filed under the customer it names, else under the lead (shown once that lead converts)."""
    campaign = _known(rows, CAMPAIGNS, event)
    _add_entry(rows, event, event.customer_id or event.lead_id, f"campaign {campaign['name']}: {event.kind}")


RESPONDED = (Lead.RespondedToCampaign, Customer.RespondedToCampaign)


def _responded(event: Any, rows: Rows) -> None:
    """The same entry as a `Campaign.ResponseRecorded` naming this respondent (of a log before home
    partitions), but for its kind, the event's own type: filed under the customer, or the lead (shown once
    it converts); its subject is the campaign, as that event's was."""
    campaign = rows.get(CAMPAIGNS, str(event.campaign_id))
    assert campaign is not None, f"response to campaign {event.campaign_id} before it was planned"
    _add_entry(rows, event, event.originator_id, f"campaign {campaign['name']}: {event.kind}",
               subject_id=event.campaign_id)


def _known(rows: Rows, table: Table, event: Any) -> dict[str, Any]:
    row = rows.get(table, str(event.originator_id))
    assert row is not None, f"{event.originator_id} changed before it was created"
    return row


def _add_entry(rows: Rows, event: Any, owner_id: Any, summary: str, subject_id: Any = None) -> None:
    entry: EntryRow = {"owner_id": str(owner_id), "subject_id": str(subject_id or event.originator_id),
                       "seq": event.originator_version, "stream_id": str(event.originator_id),
                       "recorded_at": micros(event.timestamp),
                       "occurred_at": micros(event.occurred_at), "kind": type(event).__qualname__,
                       "actor": event.actor, "summary": one_line(summary)}
    rows.put(ENTRIES, entry)
