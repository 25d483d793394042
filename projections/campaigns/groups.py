"""The campaigns report per value of a dimension (region, industry) or a lead's property, as of an instant.

Each group's report is the plain report (`queries._build_report`, rules of `domain.marketing`) built over
only that group's facts: its leads (a lead's region and industry as captured, its property as of T), the
deals and won revenue that follow the lead they were converted from (else their customer's value), the
responses of its leads (else of its customers). Every lead, deal and response is in exactly one group
(`unknown`, `domain.vocabulary.UNKNOWN`, where the value is missing), so leads, qualified, deals, won,
lost, responses and won revenue add up to the plain report.

Costs belong to a campaign, not to a region: a group's cost, ROI and CAC are None with `COST_NOTE`, rather
than a made-up split (the plain report keeps them). New customers (a customer's first win) are counted
among the group's wins only, so they need not add up when one customer's deals fall into two groups.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from domain.properties import require_name
from domain.vocabulary import UNKNOWN
from projections.campaigns.handlers import PROPERTIES
from projections.campaigns.rows import Facts
from projections.ports import Store

COLUMNS = ("region", "industry")  # the dimensions kept on leads and customers; any other `by` is a property


def cost_note(by: str) -> str:
    return f"cost is recorded per campaign, not per {by}"


def require_axis(by: str) -> str:
    """`by` if it is region, industry or a valid property name (DomainError with a sentence otherwise)."""
    return by if by in COLUMNS else require_name(by)


def values_as_of(store: Store, t: int, by: str) -> tuple[dict[str, str], dict[str, str]]:
    """Each lead's and each customer's value of `by` at `t` (µs); absent: none then."""
    if by in COLUMNS:
        leads = dict(store.query(f"SELECT lead_id, {by} FROM campaigns_leads WHERE captured_at <= ?", [t]))
        customers = dict(store.query(f"SELECT customer_id, {by} FROM campaigns_customers WHERE registered_at <= ?",
                                     [t]))
        return {k: v for k, v in leads.items() if v}, {k: v for k, v in customers.items() if v}
    versions = dict(store.query(
        f"SELECT subject_id, value FROM {PROPERTIES.versions.name} WHERE name = ? AND valid_from <= ? "
        "AND (valid_to IS NULL OR valid_to > ?)", [by, t, t]))
    return versions, versions  # lead and customer ids never collide


def property_names(store: Store, t: int) -> list[str]:
    """The names of the lead and customer properties set by `t` (µs), in order."""
    return [name for (name,) in store.query(
        f"SELECT DISTINCT name FROM {PROPERTIES.versions.name} WHERE valid_from <= ? ORDER BY name", [t])]


def split(facts: Facts, leads_of: dict[str, str], customers_of: dict[str, str]) -> dict[str, Facts]:
    """The facts of each group, by value in order; each group keeps every plan and registration (looked up
    by touches and channels) but no cost."""
    def of_lead_else_customer(lead_id: str | None, customer_id: str | None) -> str:
        if lead_id and lead_id in facts.leads:
            return leads_of.get(lead_id, UNKNOWN)
        return customers_of.get(customer_id or "", UNKNOWN)

    leads: dict[str, dict[str, Any]] = defaultdict(dict)
    deals: dict[str, list[Any]] = defaultdict(list)
    responses: dict[str, list[Any]] = defaultdict(list)
    for lead_id, lead in facts.leads.items():  # one pass over the facts, whatever the number of values
        leads[leads_of.get(lead_id, UNKNOWN)][lead_id] = lead
    for deal in facts.deals:
        deals[of_lead_else_customer(deal.lead_id, deal.customer_id)].append(deal)
    for response in facts.responses:
        responses[of_lead_else_customer(response.lead_id, response.customer_id)].append(response)
    return {value: replace(facts, costs={}, unconverted_costs={}, leads=leads[value], deals=deals[value],
                           responses=responses[value])
            for value in sorted({*leads, *deals, *responses})}


def only(facts: Facts, value: str, leads_of: dict[str, str], customers_of: dict[str, str]) -> Facts:
    """The facts of the group `value` (none if no lead, deal or response has it): a property filter."""
    return split(facts, leads_of, customers_of).get(value, replace(facts, costs={}, unconverted_costs={}, leads={},
                                                                   deals=[], responses=[]))


def without_cost(report: dict[str, Any], by: str) -> dict[str, Any]:
    """A group's report dict: cost, ROI and CAC None with the note, in every campaign's and channel's totals."""
    unknown = {"cost_cents": None, "roi": None, "cac_cents": None, "cost_note": cost_note(by)}
    for name in ("campaigns", "channels"):
        report[name] = [{**row, "totals": {**row["totals"], **unknown}} for row in report[name]]
    return report


@dataclass(frozen=True)
class CampaignGroups:
    """The campaigns report per value of `by` (each group's dict: `key` {by: value}, then the report's)."""

    as_of: datetime
    by: str
    groups: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "by": self.by, "cost_note": cost_note(self.by),
                "groups": self.groups}
