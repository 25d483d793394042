"""The timeline read model's tables and their typed rows, one row type per table (its columns, by name).

The rows are TypedDicts, the dicts the batch's row cache holds, for the reason `projections.funnel.rows`
gives. Entries keep personal data sealed (`domain.personal_data.mark`); the query side opens the seals.
"""

from __future__ import annotations

from typing import TypedDict

from projections.tables import Table

class CustomerRow(TypedDict):
    """A customer's timeline exists from its registration on."""

    customer_id: str
    registered_at: int


class LeadRow(TypedDict):
    """A converted lead: its entries join its customer's timeline from `converted_at` on."""

    lead_id: str
    customer_id: str
    converted_at: int


class DealRow(TypedDict):
    """Whose timeline a deal's entries go to, and the (sealed) title they name it by."""

    deal_id: str
    customer_id: str
    title: str


class TicketRow(TypedDict):
    """Whose timeline a ticket's entries go to, and the (sealed) subject they name it by."""

    ticket_id: str
    customer_id: str
    subject: str


class CampaignRow(TypedDict):
    campaign_id: str
    name: str


class EntryRow(TypedDict):
    """One event on one timeline: the customer's or a lead's (`owner_id`); the event is its subject's
    version `seq`. Entries of the same instant are ordered by when their events were recorded, then by
    subject and version: what every projector knows, whatever order it sees the partitions' events in."""

    owner_id: str
    subject_id: str  # the aggregate the event is about
    seq: int  # the event's version in its own stream
    stream_id: str  # the event's own stream (its aggregate): with `seq`, the event — a response on a lead's
    # stream has the campaign as its subject, so (subject, seq) could meet an older response on the campaign's
    recorded_at: int  # the event's `timestamp` (µs): when the log recorded it
    occurred_at: int
    kind: str  # the event's class, e.g. "Deal.Won"
    actor: str
    summary: str  # one line (`one_line`), personal data sealed


def one_line(text: str) -> str:
    """A summary as entries hold and show it: white space folded, no line breaks."""
    return " ".join(text.split())


CUSTOMERS = Table("timeline_customers", (("customer_id", "TEXT"), ("registered_at", "BIGINT")), ("customer_id",),
                  row_type=CustomerRow)
LEADS = Table(
    "timeline_leads",
    (("lead_id", "TEXT"), ("customer_id", "TEXT"), ("converted_at", "BIGINT")),
    ("lead_id",),
    indexes=(("customer_id",),), row_type=LeadRow)
DEALS = Table("timeline_deals", (("deal_id", "TEXT"), ("customer_id", "TEXT"), ("title", "TEXT")), ("deal_id",),
              row_type=DealRow)
TICKETS = Table("timeline_tickets", (("ticket_id", "TEXT"), ("customer_id", "TEXT"), ("subject", "TEXT")),
                ("ticket_id",), row_type=TicketRow)
CAMPAIGNS = Table("timeline_campaigns", (("campaign_id", "TEXT"), ("name", "TEXT")), ("campaign_id",),
                  row_type=CampaignRow)
ENTRIES = Table(
    "timeline_entries",
    (("owner_id", "TEXT"), ("subject_id", "TEXT"), ("seq", "INTEGER"), ("stream_id", "TEXT"), ("recorded_at", "BIGINT"),
     ("occurred_at", "BIGINT"), ("kind", "TEXT"), ("actor", "TEXT"), ("summary", "TEXT")),
    ("owner_id", "stream_id", "seq"), row_type=EntryRow)
TABLES = (CUSTOMERS, LEADS, DEALS, TICKETS, CAMPAIGNS, ENTRIES)
