"""The write side of the variants read model: campaign, response, lead and deal events → fact rows.

Each handler writes only rows of the record whose event it handles (a campaign's, a respondent's, a lead's,
a deal's), keyed by that record and its event's version, so the partitioned consumers may apply partitions in
any interleaving, and a delivery repeated after a restart writes the same rows again. Everything that joins a
variant to its leads, their deals and the decisions happens in `queries`, as of T.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from projections.read_model import ReadModel, Rows
from projections.tables import Table, cents, micros
from projections.variants.rows import (AMOUNT, LOST, OPENED, REOPENED, STOPPED, WINNER, WON, ConversionRow, DealEventRow,
                                       DealRow, DecisionRow, DefinitionRow, ExposureRow, LeadRow, ResponseRow)

DEFINITIONS = Table("variants_definitions", (("campaign_id", "TEXT"), ("seq", "INTEGER"), ("occurred_at", "BIGINT"),
                                            ("variants", "TEXT")), ("campaign_id", "seq"), row_type=DefinitionRow)
EXPOSURES = Table("variants_exposures", (("campaign_id", "TEXT"), ("seq", "INTEGER"), ("occurred_at", "BIGINT"),
                                        ("variant", "TEXT"), ("count", "BIGINT")), ("campaign_id", "seq"),
                  row_type=ExposureRow)
DECISIONS = Table("variants_decisions", (("campaign_id", "TEXT"), ("seq", "INTEGER"), ("occurred_at", "BIGINT"),
                                        ("decision", "TEXT"), ("variant", "TEXT"), ("reason", "TEXT"),
                                        ("actor", "TEXT")), ("campaign_id", "seq"), row_type=DecisionRow)
RESPONSES = Table("variants_responses", (("stream_id", "TEXT"), ("seq", "INTEGER"), ("occurred_at", "BIGINT"),
                                        ("campaign_id", "TEXT"), ("variant", "TEXT")), ("stream_id", "seq"),
                  # covering a report's distinct respondents per variant: 100k responses took 630 ms with an index
                  # on campaign_id alone, 142 ms so (SQLite, load ≈ 11 on 2 cores; its leads 62 → 3 ms likewise)
                  indexes=(("campaign_id", "variant", "stream_id", "occurred_at"),), row_type=ResponseRow)
LEADS = Table("variants_leads", (("lead_id", "TEXT"), ("campaign_id", "TEXT"), ("variant", "TEXT"),
                                ("captured_at", "BIGINT"), ("qualified_at", "BIGINT"), ("converted_at", "BIGINT")),
              ("lead_id",), indexes=(("campaign_id", "variant", "captured_at", "qualified_at", "converted_at"),),
              row_type=LeadRow)
CONVERSIONS = Table("variants_conversions", (("lead_id", "TEXT"), ("customer_id", "TEXT"), ("converted_at", "BIGINT")),
                    ("lead_id",), row_type=ConversionRow)
DEALS = Table("variants_deals", (("deal_id", "TEXT"), ("lead_id", "TEXT"), ("currency", "TEXT")), ("deal_id",),
              indexes=(("lead_id",),), row_type=DealRow)
DEAL_EVENTS = Table("variants_deal_events", (("deal_id", "TEXT"), ("seq", "INTEGER"), ("occurred_at", "BIGINT"),
                                            ("step", "TEXT"), ("amount_cents", "BIGINT")), ("deal_id", "seq"),
                    row_type=DealEventRow)


class VariantsReadModel(ReadModel):
    """Each campaign variant's funnel facts in business time, for A/B reports as of any instant."""

    name = "variants"
    tables = (DEFINITIONS, EXPOSURES, DECISIONS, RESPONSES, LEADS, CONVERSIONS, DEALS, DEAL_EVENTS)

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return {
            Campaign.VariantsDefined: _defined,
            Campaign.ExposuresRecorded: _exposed,
            Campaign.VariantStopped: _decided(STOPPED),
            Campaign.WinnerDeclared: _decided(WINNER),
            Lead.RespondedToCampaign: _responded,
            Customer.RespondedToCampaign: _responded,
            Lead.Captured: _captured,
            Lead.Qualified: _lead_step("qualified_at"),
            Lead.Converted: _converted,
            Deal.Opened: _deal_opened,
            Deal.AmountChanged: _deal_step(AMOUNT, lambda e: cents(e.new_amount)),
            Deal.Won: _deal_step(WON),
            Deal.Lost: _deal_step(LOST),
            Deal.Reopened: _deal_step(REOPENED),
        }

    def prefetch(self, events: list[Any], rows: Rows) -> None:
        """A batch's leads and deals, in two reads rather than one per qualification, conversion or deal event."""
        rows.prefetch(LEADS, [(str(e.originator_id),) for e in events if isinstance(e, (Lead.Qualified, Lead.Converted))])
        rows.prefetch(DEALS, [(str(e.originator_id),) for e in events
                              if isinstance(e, (Deal.AmountChanged, Deal.Won, Deal.Lost, Deal.Reopened))])


def _key(event: Any) -> tuple[str, int, int]:
    return str(event.originator_id), event.originator_version, micros(event.occurred_at)


def _defined(event: Campaign.VariantsDefined, rows: Rows) -> None:
    rows.put(DEFINITIONS, DefinitionRow(*_key(event), orjson.dumps(event.variants).decode()))


def _exposed(event: Campaign.ExposuresRecorded, rows: Rows) -> None:
    rows.put(EXPOSURES, ExposureRow(*_key(event), event.variant, event.count))


def _decided(decision: str) -> Callable[[Any, Rows], None]:
    def handle(event: Any, rows: Rows) -> None:
        rows.put(DECISIONS, DecisionRow(*_key(event), decision, event.variant, event.reason, event.actor))
    return handle


def _responded(event: Any, rows: Rows) -> None:
    if event.variant:  # responses naming no variant are the campaigns read model's alone
        rows.put(RESPONSES, ResponseRow(*_key(event), str(event.campaign_id), event.variant))


def _captured(event: Lead.Captured, rows: Rows) -> None:
    if event.variant:
        rows.put(LEADS, LeadRow(str(event.originator_id), str(event.campaign_id), event.variant,
                                micros(event.occurred_at), None, None))


def _lead_step(column: str) -> Callable[[Any, Rows], None]:
    """A lead is qualified once and converted once: the instant is kept on its row (if it came from a variant)."""
    def handle(event: Any, rows: Rows) -> None:
        lead: LeadRow | None = rows.get(LEADS, str(event.originator_id))
        if lead is not None:
            rows.put(LEADS, lead._replace(**{column: micros(event.occurred_at)}))
    return handle


def _converted(event: Lead.Converted, rows: Rows) -> None:
    _lead_step("converted_at")(event, rows)
    rows.put(CONVERSIONS, ConversionRow(str(event.originator_id), str(event.customer_id), micros(event.occurred_at)))


def _deal_opened(event: Deal.Opened, rows: Rows) -> None:
    if event.lead_id is not None:
        rows.put(DEALS, DealRow(str(event.originator_id), str(event.lead_id), event.currency))
        rows.put(DEAL_EVENTS, DealEventRow(*_key(event), OPENED, cents(event.amount)))


def _deal_step(step: str, amount: Callable[[Any], int | None] = lambda _: None) -> Callable[[Any, Rows], None]:
    def handle(event: Any, rows: Rows) -> None:
        if rows.get(DEALS, str(event.originator_id)) is not None:  # a deal opened from a lead
            rows.put(DEAL_EVENTS, DealEventRow(*_key(event), step, amount(event)))
    return handle
