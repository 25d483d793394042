"""Typed rows of the attribution read model, one per table: the dated facts a credit as of T is derived from.

A row's fields are its table's columns in order (`Table.row_type` checks it). Instants are microseconds
since the epoch, money is cents in the row's own currency, ids are UUID text; `variant` is "" when the
response or lead names none (events older than variants carry none). Costs and deal events are the rows the
campaigns read model keeps of the same facts (`projections.campaigns.rows.CostRow`, `DealEventRow`).
"""

from __future__ import annotations

from typing import NamedTuple


class CampaignRow(NamedTuple):
    campaign_id: str
    name: str
    channel: str
    currency: str  # of its costs
    planned_at: int


class ResponseRow(NamedTuple):
    stream_id: str  # whose stream holds the event: the respondent's, or the campaign's in older logs
    seq: int
    campaign_id: str
    variant: str
    occurred_at: int
    customer_id: str | None  # the respondent: a customer, a lead, or both
    lead_id: str | None


class LeadRow(NamedTuple):
    lead_id: str
    campaign_id: str | None
    variant: str
    captured_at: int


class ConversionRow(NamedTuple):
    """A lead converted into a customer: its own table, so that no handler reads another's row."""

    lead_id: str
    customer_id: str
    converted_at: int


class CustomerRow(NamedTuple):
    customer_id: str
    channel: str
    campaign_id: str | None
    registered_at: int


class DealRow(NamedTuple):
    deal_id: str
    customer_id: str
    lead_id: str | None
    opened_at: int
    currency: str
