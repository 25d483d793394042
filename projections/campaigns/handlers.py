"""The write side of the campaigns read model: its tables, and the events that become their rows.

The facts are stored, each with its business time: campaign plans, status changes, costs and responses;
lead capture, qualification and conversion; customer registrations; deal openings, amounts, wins, losses
and reopenings. Figures that combine several aggregates' events, which may arrive in any business-time
order (a response can be recorded long after the lead it names was converted), are not kept up to date
event by event: after each batch, the steps of every lead and customer it touched are derived again from
their facts and the tallies changed by the difference (`summed_tables`), so that a report as of any
instant sums tallies (`summed`) rather than deriving every figure from every fact (`facts_report`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.campaign import CLOSED, LAUNCHED, PLANNED, Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.pipeline import LOST, WON
from projections.read_model import ReadModel, Rows
from projections.campaigns.rows import (
    AMOUNT,
    REOPENED,
    CostRow,
    CustomerRow,
    DealEventRow,
    DealRow,
    LeadRow,
    PlanRow,
    ResponseRow,
    StatusRow,
    id_text,
)
from projections.campaigns.summed_tables import SUMMED_TABLES, pending, refresh, tally
from projections.tables import Table, cents, micros
from projections.versioned_properties import property_tables, record_changes

PLANS = Table(
    "campaigns_plans",
    (("campaign_id", "TEXT"), ("name", "TEXT"), ("channel", "TEXT"), ("budget_cents", "BIGINT"),
     ("currency", "TEXT"), ("planned_at", "BIGINT")),
    ("campaign_id",), row_type=PlanRow,
)
STATUSES = Table(
    "campaigns_statuses",
    (("campaign_id", "TEXT"), ("seq", "INTEGER"), ("occurred_at", "BIGINT"), ("status", "TEXT")),
    ("campaign_id", "seq"), row_type=StatusRow,
)
COSTS = Table(
    "campaigns_costs",
    (("campaign_id", "TEXT"), ("seq", "INTEGER"), ("occurred_at", "BIGINT"), ("amount_cents", "BIGINT")),
    ("campaign_id", "seq"),
    indexes=(("occurred_at",),), row_type=CostRow,  # occurred_at: a report adds the costs of its instant's day
)
RESPONSES = Table(
    "campaigns_responses",
    (("campaign_id", "TEXT"), ("seq", "INTEGER"), ("occurred_at", "BIGINT"), ("kind", "TEXT"),
     ("customer_id", "TEXT"), ("lead_id", "TEXT"), ("stream_id", "TEXT")),
    ("stream_id", "seq"),  # customer_id, lead_id: a customer's touches (summed_tables.customer_facts)
    indexes=(("occurred_at",), ("customer_id",), ("lead_id",)), row_type=ResponseRow,
)
LEADS = Table(
    "campaigns_leads",
    (("lead_id", "TEXT"), ("campaign_id", "TEXT"), ("captured_at", "BIGINT"), ("qualified_at", "BIGINT"),
     ("converted_at", "BIGINT"), ("customer_id", "TEXT"), ("disqualified_at", "BIGINT"), ("region", "TEXT"),
     ("industry", "TEXT")),
    ("lead_id",), indexes=(("customer_id",),), row_type=LeadRow,
)
CUSTOMERS = Table(
    "campaigns_customers",
    (("customer_id", "TEXT"), ("channel", "TEXT"), ("campaign_id", "TEXT"), ("registered_at", "BIGINT"),
     ("region", "TEXT"), ("industry", "TEXT")),
    ("customer_id",), row_type=CustomerRow,
)
DEALS = Table(
    "campaigns_deals",
    (("deal_id", "TEXT"), ("customer_id", "TEXT"), ("campaign_id", "TEXT"), ("lead_id", "TEXT"),
     ("opened_at", "BIGINT"), ("currency", "TEXT")),
    ("deal_id",), indexes=(("customer_id",),), row_type=DealRow,
)
DEAL_EVENTS = Table(
    "campaigns_deal_events",
    (("deal_id", "TEXT"), ("seq", "INTEGER"), ("occurred_at", "BIGINT"), ("kind", "TEXT"),
     ("amount_cents", "BIGINT")),
    ("deal_id", "seq"),
    indexes=(("occurred_at",),), row_type=DealEventRow,
)
PROPERTIES = property_tables("campaigns")  # leads' and customers' properties as of any instant, for `--by`

_STATUS_OF = {Campaign.Planned: PLANNED, Campaign.Launched: LAUNCHED, Campaign.Closed: CLOSED}
_CLOSING_KIND = {Deal.Won: WON, Deal.Lost: LOST, Deal.Reopened: REOPENED}
_DEAL_CHANGES = (Deal.AmountChanged, Deal.Won, Deal.Lost, Deal.Reopened)


class CampaignsReadModel(ReadModel):
    """Dated facts about campaigns and the leads, customers and deals they bring."""

    name = "campaigns"
    tables = (PLANS, STATUSES, COSTS, RESPONSES, LEADS, CUSTOMERS, DEALS, DEAL_EVENTS, *PROPERTIES, *SUMMED_TABLES)

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return {
            Campaign.Planned: _campaign_planned, Campaign.Launched: _status_changed,
            Campaign.Closed: _status_changed, Campaign.CostRecorded: _cost_recorded,
            Campaign.ResponseRecorded: _response_recorded,
            Lead.RespondedToCampaign: _lead_responded, Customer.RespondedToCampaign: _customer_responded,
            Lead.Captured: _lead_captured, Lead.Qualified: _lead_qualified, Lead.Converted: _lead_converted,
            Lead.Disqualified: _lead_disqualified,
            Customer.Registered: _customer_registered,
            Lead.PropertiesChanged: _properties_changed, Customer.PropertiesChanged: _properties_changed,
            Deal.Opened: _deal_opened, Deal.AmountChanged: _amount_changed,
            Deal.Won: _deal_closing, Deal.Lost: _deal_closing, Deal.Reopened: _deal_closing,
        }

    def prefetch(self, events: list[Any], rows: Rows) -> None:
        rows.prefetch(LEADS, [(str(e.originator_id),) for e in events
                              if isinstance(e, (Lead.Qualified, Lead.Converted, Lead.Disqualified,
                                                Lead.RespondedToCampaign))]
                      + [(str(e.lead_id),) for e in events if isinstance(e, Campaign.ResponseRecorded) and e.lead_id])
        rows.prefetch(DEALS, [(str(e.originator_id),) for e in events if isinstance(e, _DEAL_CHANGES)])

    def finish(self, rows: Rows) -> None:
        refresh(rows, LEADS)


def _campaign_planned(event: Campaign.Planned, rows: Rows) -> None:
    rows.put(PLANS, PlanRow(str(event.originator_id), event.name, event.channel, cents(event.budget),
                            event.currency, micros(event.occurred_at)))
    _status_changed(event, rows)


def _status_changed(event: Any, rows: Rows) -> None:
    rows.put(STATUSES, StatusRow(str(event.originator_id), event.originator_version, micros(event.occurred_at),
                                 _STATUS_OF[type(event)]))


def _cost_recorded(event: Campaign.CostRecorded, rows: Rows) -> None:
    row = CostRow(str(event.originator_id), event.originator_version, micros(event.occurred_at), cents(event.amount))
    rows.put(COSTS, row)
    tally(rows, row.occurred_at, {f"c|{row.campaign_id}": row.amount_cents})


def _response_recorded(event: Campaign.ResponseRecorded, rows: Rows) -> None:
    """A response as logs before home partitions recorded it, on the campaign's stream: the same fact as
    the respondent's `RespondedToCampaign`."""
    _response(ResponseRow(str(event.originator_id), event.originator_version, micros(event.occurred_at),
                          event.kind, id_text(event.customer_id), id_text(event.lead_id), str(event.originator_id)),
              rows)


def _lead_responded(event: Lead.RespondedToCampaign, rows: Rows) -> None:
    _response(ResponseRow(str(event.campaign_id), event.originator_version, micros(event.occurred_at),
                          event.kind, None, str(event.originator_id), str(event.originator_id)), rows)


def _customer_responded(event: Customer.RespondedToCampaign, rows: Rows) -> None:
    _response(ResponseRow(str(event.campaign_id), event.originator_version, micros(event.occurred_at),
                          event.kind, str(event.originator_id), None, str(event.originator_id)), rows)


def _response(row: ResponseRow, rows: Rows) -> None:
    """A response counts for its campaign, and is a touch of its customer, or of the customer its lead was
    converted into (if it was already: else that conversion brings it)."""
    rows.put(RESPONSES, row)
    tally(rows, row.occurred_at, {f"r|{row.kind}|{row.campaign_id}": 1})
    touched = pending(rows).customers
    if row.customer_id:
        touched.add(row.customer_id)
    lead: LeadRow | None = rows.get(LEADS, row.lead_id) if row.lead_id else None
    if lead is not None and lead.customer_id:
        touched.add(lead.customer_id)


def _lead_captured(event: Lead.Captured, rows: Rows) -> None:
    rows.put(LEADS, LeadRow(str(event.originator_id), id_text(event.campaign_id), micros(event.occurred_at),
                            qualified_at=None, converted_at=None, customer_id=None, disqualified_at=None,
                            region=event.region, industry=event.industry))
    pending(rows).leads.setdefault(str(event.originator_id), None)


def _lead(event: Any, rows: Rows) -> LeadRow:
    lead: LeadRow | None = rows.get(LEADS, str(event.originator_id))
    assert lead is not None, f"lead {event.originator_id} changed before it was captured"
    pending(rows).leads.setdefault(lead.lead_id, lead)  # as the batch found it: its steps are stored
    return lead


def _lead_qualified(event: Lead.Qualified, rows: Rows) -> None:
    rows.put(LEADS, _lead(event, rows)._replace(qualified_at=micros(event.occurred_at)))


def _lead_converted(event: Lead.Converted, rows: Rows) -> None:
    rows.put(LEADS, _lead(event, rows)._replace(converted_at=micros(event.occurred_at),
                                                customer_id=str(event.customer_id)))
    pending(rows).customers.add(str(event.customer_id))  # the lead's capture and responses are its touches now


def _lead_disqualified(event: Lead.Disqualified, rows: Rows) -> None:
    """A lead's loss (from new or qualified; a disqualified lead is never converted), so that conversions
    count decided leads apart from open ones."""
    rows.put(LEADS, _lead(event, rows)._replace(disqualified_at=micros(event.occurred_at)))


def _customer_registered(event: Customer.Registered, rows: Rows) -> None:
    rows.put(CUSTOMERS, CustomerRow(str(event.originator_id), event.channel, id_text(event.campaign_id),
                                    micros(event.occurred_at), event.region, event.industry))
    pending(rows).customers.add(str(event.originator_id))


def _properties_changed(event: Any, rows: Rows) -> None:
    """A lead's or customer's properties (their ids never collide): kept as versions, for a report grouped by one."""
    record_changes(PROPERTIES, str(event.originator_id), event.changes, event.originator_version,
                   micros(event.occurred_at), rows)


def _deal_opened(event: Deal.Opened, rows: Rows) -> None:
    rows.put(DEALS, DealRow(str(event.originator_id), str(event.customer_id), id_text(event.campaign_id),
                            id_text(event.lead_id), micros(event.occurred_at), event.currency))
    pending(rows).customers.add(str(event.customer_id))
    _deal_event(event, AMOUNT, cents(event.amount), rows)


def _amount_changed(event: Deal.AmountChanged, rows: Rows) -> None:
    _deal_event(event, AMOUNT, cents(event.new_amount), rows)


def _deal_closing(event: Any, rows: Rows) -> None:
    _deal_event(event, _CLOSING_KIND[type(event)], None, rows)


def _deal_event(event: Any, kind: str, amount_cents: int | None, rows: Rows) -> None:
    rows.put(DEAL_EVENTS, DealEventRow(str(event.originator_id), event.originator_version,
                                       micros(event.occurred_at), kind, amount_cents))
    deal: DealRow | None = rows.get(DEALS, str(event.originator_id))
    assert deal is not None, f"deal {event.originator_id} changed before it was opened"
    pending(rows).customers.add(deal.customer_id)
