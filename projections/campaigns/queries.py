"""The query side of the campaigns read model: cost, responses, leads, deals, revenue, attribution and CLV,
as of any instant.

The plain report (by campaign and channel, attribution, CLV, ROI, CAC) sums the read model's tallies
(`summed`): its cost does not grow with the history. The report grouped or filtered by a lead's region,
industry or property, and each customer's lifetime value, derive every figure from the facts that had
happened by the instant (`facts_report`); the rules behind the figures are `domain.marketing`'s.

Money is in the reporting currency, each sum converted at the rate in force at T (`Conversion`): a
campaign's cost (in its own currency) and its won revenue (in each deal's) are then comparable, and ROI
and CAC mean something when a campaign in CNY brings deals in USD. An amount whose currency has no rate at
T is never added: it counts 0 in the figures and is listed, by currency, in `unconverted` (the campaign's,
the channel's and the report's); a campaign with an unconverted cost or revenue has no ROI and no CAC, as
neither could be right.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.exchange_rates import Conversion, add_sums
from domain.marketing import lifetime_values
from projections.campaigns.facts_report import deals_for_values, facts_report, grouped_report, load_facts
from projections.campaigns.figures import (UNKNOWN_CHANNEL, AttributionRow, CampaignRow, CampaignsReport,
                                           CampaignValue, ChannelRow, ChannelValue, Totals)
from projections.campaigns.groups import CampaignGroups, only, property_names, require_axis, values_as_of, without_cost
from projections.campaigns.summed import summed_report
from projections.ports import Store
from projections.tables import micros

__all__ = ["UNKNOWN_CHANNEL", "AttributionRow", "CampaignGroups", "CampaignQueries", "CampaignRow", "CampaignValue",
           "CampaignsReport", "ChannelRow", "ChannelValue", "Totals"]


class CampaignQueries:
    """Answers campaign, channel, attribution and lifetime-value questions as of an instant."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def report(self, as_of: datetime, channel: str | None = None, money: Conversion = Conversion()) -> CampaignsReport:
        """Money in `money.reporting` at its rates (default: CNY only, every other currency unconverted)."""
        return summed_report(self.store, as_of, channel, money)

    def grouped(self, as_of: datetime, by: str, money: Conversion = Conversion()) -> CampaignGroups:
        """The report per value of `by` (region, industry, or a lead's property as of `as_of`): see groups.py."""
        t = micros(as_of)
        facts = load_facts(self.store, t, money)
        return grouped_report(as_of, facts, require_axis(by), values_as_of(self.store, t, by), money)

    def filtered(self, as_of: datetime, properties: tuple[tuple[str, str], ...],
                 money: Conversion = Conversion()) -> dict[str, Any]:
        """The report over only the leads, deals and responses with every (name, value) as of `as_of` (name:
        region, industry or a property, as `grouped`'s `by`), cost, ROI and CAC null: the dict of that group."""
        t = micros(as_of)
        facts = load_facts(self.store, t, money)
        for name, value in properties:
            facts = only(facts, value, *values_as_of(self.store, t, require_axis(name)))
        report = facts_report(as_of, facts, None, money).to_dict()
        return {"properties": dict(properties), **without_cost(report, "/".join(dict(properties)))}

    def customer_values(self, as_of: datetime, money: Conversion = Conversion()) -> dict[UUID, int]:
        """Lifetime value (cents in `money.reporting`) of every customer with a deal won as of `as_of`; a win
        without a rate at `as_of` adds nothing (the report lists it in `unconverted`)."""
        return self.customer_values_and_unconverted(as_of, money)[0]

    def customer_values_and_unconverted(self, as_of: datetime, money: Conversion = Conversion()
                                        ) -> tuple[dict[UUID, int], dict[UUID, dict[str, int]]]:
        """`customer_values`, and per customer its wins without a rate at `as_of`, cents per currency (they
        count 0 in its value: a report shows them beside it, never drops them)."""
        deals = deals_for_values(self.store, micros(as_of), money)
        unconverted: dict[UUID, dict[str, int]] = {}
        for deal in deals:
            if deal.win is not None and deal.unconverted:
                add_sums(unconverted.setdefault(UUID(deal.customer_id), {}), dict([deal.unconverted]))
        wins = [deal.win for deal in deals if deal.win is not None]
        return {UUID(cid): value for cid, value in lifetime_values(wins).items()}, unconverted

    def summary(self, as_of: datetime, money: Conversion = Conversion()) -> dict[str, Any]:
        """Every figure this read model answers as of `as_of`, JSON-able."""
        facts = load_facts(self.store, micros(as_of), money)
        t = micros(as_of)
        return {"report": summed_report(self.store, as_of, None, money).to_dict(),
                "customer_values": dict(sorted(lifetime_values(facts.wins).items())),
                "groups": {by: grouped_report(as_of, facts, by, values_as_of(self.store, t, by), money).to_dict()
                           for by in ("region", "industry", *property_names(self.store, t))}}

