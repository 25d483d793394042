"""Typed rows of the campaigns read model: one per table (what its handlers write) and one per fact a query
loads as of an instant (what its figures are derived from).

A table row's fields are its table's columns in order: each table of `handlers.py` declares its row type
(`Table.row_type`, which checks that), so `Rows` fetches, holds and writes these tuples as they are.
Instants are microseconds since the epoch, money is cents, ids are UUID text (see `projections.tables`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple
from uuid import UUID

from domain.marketing import Win

AMOUNT, REOPENED = "amount", "reopened"
"""`DealEventRow.kind` besides won and lost: the deal's amount was set (opened or changed), it was reopened."""


def id_text(value: UUID | None) -> str | None:
    """An optional id as rows hold it."""
    return None if value is None else str(value)


# --- table rows ----------------------------------------------------------------------------------


class PlanRow(NamedTuple):
    campaign_id: str
    name: str
    channel: str
    budget_cents: int
    currency: str
    planned_at: int


class StatusRow(NamedTuple):
    campaign_id: str
    seq: int  # the campaign event's version: orders a campaign's statuses
    occurred_at: int
    status: str


class CostRow(NamedTuple):
    campaign_id: str
    seq: int
    occurred_at: int
    amount_cents: int


class ResponseRow(NamedTuple):
    campaign_id: str
    seq: int  # the event's version on its stream
    occurred_at: int
    kind: str
    customer_id: str | None  # the respondent: a customer, a lead, or both
    lead_id: str | None
    stream_id: str  # whose stream holds the event: the respondent's, or the campaign's in logs before home partitions


class LeadRow(NamedTuple):
    lead_id: str
    campaign_id: str | None
    captured_at: int
    qualified_at: int | None
    converted_at: int | None
    customer_id: str | None  # set with converted_at
    disqualified_at: int | None
    region: str  # as captured (a lead's region and industry never change)
    industry: str


class CustomerRow(NamedTuple):
    customer_id: str
    channel: str
    campaign_id: str | None
    registered_at: int
    region: str  # as registered (no event changes them)
    industry: str


class DealRow(NamedTuple):
    deal_id: str
    customer_id: str
    campaign_id: str | None
    lead_id: str | None  # the lead it was converted from
    opened_at: int
    currency: str  # of its amounts (a deal's currency never changes)


class DealEventRow(NamedTuple):
    deal_id: str
    seq: int
    occurred_at: int
    kind: str  # AMOUNT, won, lost or REOPENED
    amount_cents: int | None  # with AMOUNT only


# --- facts as of an instant T ---------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A campaign planned by T, with its status at T."""

    name: str
    channel: str
    budget_cents: int
    currency: str
    planned_at: int
    status: str


class Response(NamedTuple):
    """A response recorded by T (the columns of `campaigns_responses` a query reads, in this order)."""

    campaign_id: str
    at: int
    kind: str
    customer_id: str | None
    lead_id: str | None


@dataclass(frozen=True)
class LeadFact:
    """A lead captured by T: qualified by T or not, and the customer it was converted into by T, if any."""

    campaign_id: str | None
    captured_at: int
    qualified: bool
    customer_id: str | None
    disqualified: bool = False  # by T: lost (as a new lead if not qualified by then, else as a qualified one)


class Registration(NamedTuple):
    """A customer registered by T: through which channel and campaign, and when."""

    channel: str
    campaign_id: str | None
    registered_at: int


class DealFact(NamedTuple):
    """A deal opened by T, with its campaign (`domain.marketing.deal_campaign`) and its win in force at T."""

    deal_id: str
    customer_id: str
    campaign_id: str | None
    win: Win | None  # its revenue in the reporting currency; 0 when it had no rate at T (then `unconverted`)
    unconverted: tuple[str, int] | None = None  # (currency, cents) of a win without a rate at T
    lost: bool = False  # its last win, loss or reopening by T was a loss (neither: still open)
    lead_id: str | None = None  # the lead it was converted from: a grouped report puts it in that lead's group


@dataclass(frozen=True)
class Facts:
    """Every fact with business time at or before T, by id where a figure looks them up."""

    plans: dict[str, Plan]
    costs: dict[str, int]  # campaign → cost by T, cents in the reporting currency (0 when it had no rate at T)
    responses: list[Response]
    leads: dict[str, LeadFact]
    customers: dict[str, Registration]
    deals: list[DealFact]
    unconverted_costs: dict[str, tuple[str, int]] = field(default_factory=dict)  # campaign → (currency, cents)

    @property
    def wins(self) -> list[Win]:
        return [deal.win for deal in self.deals if deal.win is not None]
