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
    """One event on one timeline: the customer's or a lead's (`owner_id`), numbered in log order."""

    owner_id: str
    position: int  # breaks ties between entries of the same instant
    occurred_at: int
    kind: str  # the event's class, e.g. "Deal.Won"
    actor: str
    summary: str  # one line (`one_line`), personal data sealed
    subject_id: str  # the aggregate the event is about


class CounterRow(TypedDict):
    """The last entry position handed out."""

    name: str
    position: int


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
    (("owner_id", "TEXT"), ("position", "BIGINT"), ("occurred_at", "BIGINT"), ("kind", "TEXT"), ("actor", "TEXT"),
     ("summary", "TEXT"), ("subject_id", "TEXT")),
    ("owner_id", "position"), row_type=EntryRow)
COUNTER = Table("timeline_counter", (("name", "TEXT"), ("position", "BIGINT")), ("name",), row_type=CounterRow)
TABLES = (CUSTOMERS, LEADS, DEALS, TICKETS, CAMPAIGNS, ENTRIES, COUNTER)
