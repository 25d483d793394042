"""The write side of the attribution read model: campaign, response, lead, customer and deal events → dated rows.

Each handler writes only rows of its own event's record and reads none, so the partitioned consumers may
apply partitions in any interleaving (a response may arrive before the lead it names is converted, a win
before the campaign is planned): what joins a win to its customer's touches happens in `queries`, as of T.
Why not credit on each event: a touch recorded after a win (an import of older responses) changes that
win's credits, and the half-life of time decay is chosen per query; the facts are few per deal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.pipeline import LOST, WON
from projections.attribution.rows import CampaignRow, ConversionRow, CustomerRow, DealRow, LeadRow, ResponseRow
from projections.campaigns.rows import AMOUNT, REOPENED, CostRow, DealEventRow  # the same facts, the same rows
from projections.read_model import ReadModel, Rows
from projections.tables import Table, cents, micros


CAMPAIGNS = Table("attribution_campaigns", (("campaign_id", "TEXT"), ("name", "TEXT"), ("channel", "TEXT"),
                                            ("currency", "TEXT"), ("planned_at", "BIGINT")),
                  ("campaign_id",), row_type=CampaignRow)
COSTS = Table("attribution_costs", (("campaign_id", "TEXT"), ("seq", "INTEGER"), ("occurred_at", "BIGINT"),
                                    ("amount_cents", "BIGINT")),
              ("campaign_id", "seq"), row_type=CostRow)
RESPONSES = Table("attribution_responses", (("stream_id", "TEXT"), ("seq", "INTEGER"), ("campaign_id", "TEXT"),
                                            ("variant", "TEXT"), ("occurred_at", "BIGINT"), ("customer_id", "TEXT"),
                                            ("lead_id", "TEXT")),
                  ("stream_id", "seq"), indexes=(("customer_id",), ("lead_id",)), row_type=ResponseRow)
LEADS = Table("attribution_leads", (("lead_id", "TEXT"), ("campaign_id", "TEXT"), ("variant", "TEXT"),
                                    ("captured_at", "BIGINT")),
              ("lead_id",), row_type=LeadRow)
CONVERSIONS = Table("attribution_conversions", (("lead_id", "TEXT"), ("customer_id", "TEXT"),
                                                ("converted_at", "BIGINT")),
                    ("lead_id",), indexes=(("customer_id",),), row_type=ConversionRow)
CUSTOMERS = Table("attribution_customers", (("customer_id", "TEXT"), ("channel", "TEXT"), ("campaign_id", "TEXT"),
                                            ("registered_at", "BIGINT")),
                  ("customer_id",), row_type=CustomerRow)
DEALS = Table("attribution_deals", (("deal_id", "TEXT"), ("customer_id", "TEXT"), ("lead_id", "TEXT"),
                                    ("opened_at", "BIGINT"), ("currency", "TEXT")),
              ("deal_id",), row_type=DealRow)
DEAL_EVENTS = Table("attribution_deal_events", (("deal_id", "TEXT"), ("seq", "INTEGER"), ("occurred_at", "BIGINT"),
                                                ("kind", "TEXT"), ("amount_cents", "BIGINT")),
                    ("deal_id", "seq"), indexes=(("occurred_at",),), row_type=DealEventRow)

# Deal event → (its row's kind, the field holding its amount, if any)
_DEAL_CHANGES = {Deal.Opened: (AMOUNT, "amount"), Deal.AmountChanged: (AMOUNT, "new_amount"), Deal.Won: (WON, None),
                 Deal.Lost: (LOST, None), Deal.Reopened: (REOPENED, None)}


class AttributionReadModel(ReadModel):
    """Dated touches, leads, registrations, costs and deal outcomes, for multi-touch credits as of any instant."""

    name = "attribution"
    tables = (CAMPAIGNS, COSTS, RESPONSES, LEADS, CONVERSIONS, CUSTOMERS, DEALS, DEAL_EVENTS)

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return {
            Campaign.Planned: _campaign_planned, Campaign.CostRecorded: _cost_recorded,
            Campaign.ResponseRecorded: _response_recorded,
            Lead.RespondedToCampaign: _lead_responded, Customer.RespondedToCampaign: _customer_responded,
            Lead.Captured: _lead_captured, Lead.Converted: _lead_converted,
            Customer.Registered: _customer_registered,
            Deal.Opened: _deal_opened, Deal.AmountChanged: _deal_changed,
            Deal.Won: _deal_changed, Deal.Lost: _deal_changed, Deal.Reopened: _deal_changed,
        }


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def _campaign_planned(event: Campaign.Planned, rows: Rows) -> None:
    rows.put(CAMPAIGNS, CampaignRow(str(event.originator_id), event.name, event.channel, event.currency,
                                    micros(event.occurred_at)))


def _cost_recorded(event: Campaign.CostRecorded, rows: Rows) -> None:
    rows.put(COSTS, CostRow(str(event.originator_id), event.originator_version, micros(event.occurred_at),
                            cents(event.amount)))


def _response_recorded(event: Campaign.ResponseRecorded, rows: Rows) -> None:
    """A response as logs before home partitions recorded it, on the campaign's stream (before variants: none)."""
    rows.put(RESPONSES, ResponseRow(str(event.originator_id), event.originator_version, str(event.originator_id),
                                    "", micros(event.occurred_at), _id(event.customer_id),
                                    _id(event.lead_id)))


def _lead_responded(event: Lead.RespondedToCampaign, rows: Rows) -> None:
    rows.put(RESPONSES, ResponseRow(str(event.originator_id), event.originator_version, str(event.campaign_id),
                                    event.variant, micros(event.occurred_at), None, str(event.originator_id)))


def _customer_responded(event: Customer.RespondedToCampaign, rows: Rows) -> None:
    rows.put(RESPONSES, ResponseRow(str(event.originator_id), event.originator_version, str(event.campaign_id),
                                    event.variant, micros(event.occurred_at), str(event.originator_id), None))


def _lead_captured(event: Lead.Captured, rows: Rows) -> None:
    rows.put(LEADS, LeadRow(str(event.originator_id), _id(event.campaign_id), event.variant,
                            micros(event.occurred_at)))


def _lead_converted(event: Lead.Converted, rows: Rows) -> None:
    rows.put(CONVERSIONS, ConversionRow(str(event.originator_id), str(event.customer_id), micros(event.occurred_at)))


def _customer_registered(event: Customer.Registered, rows: Rows) -> None:
    rows.put(CUSTOMERS, CustomerRow(str(event.originator_id), event.channel, _id(event.campaign_id),
                                    micros(event.occurred_at)))


def _deal_opened(event: Deal.Opened, rows: Rows) -> None:
    rows.put(DEALS, DealRow(str(event.originator_id), str(event.customer_id), _id(event.lead_id),
                            micros(event.occurred_at), event.currency))
    _deal_changed(event, rows)


def _deal_changed(event: Any, rows: Rows) -> None:
    """An amount set (opened or changed), a win, a loss or a reopening: a dated row of the deal's."""
    kind, amount_field = _DEAL_CHANGES[type(event)]
    rows.put(DEAL_EVENTS, DealEventRow(str(event.originator_id), event.originator_version, micros(event.occurred_at),
                                       kind, cents(getattr(event, amount_field)) if amount_field else None))
