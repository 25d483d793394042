"""The campaigns report derived in Python from every fact that had happened by an instant (`rows.Facts`).

This is how the read model answered every question before its tallies (`summed`), kept for what the
tallies do not hold: the report grouped by a lead's region, industry or property (`groups.py`), filtered
by them, and each customer's lifetime value; and as the reference the summed report is held equal to
(tests/unit/projections/campaigns/test_summed.py). Its cost grows with the facts up to the instant.

Choices of this read model: a deal counts as won at T when its last win/loss/reopening by T was a win,
with its amount at that win; a campaign's new customers are those whose first win is one of its deals;
a customer's touches are responses by them or by the lead they were converted from, the capture of that
lead and their registration; a touch naming a campaign not planned by T counts as no campaign touch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from datetime import datetime
from typing import Any

from domain.exchange_rates import Conversion, add_sums
from domain.marketing import (
    AttributionCredit,
    Touch,
    Win,
    credited_campaigns,
    deal_campaign,
    first_and_last_touch,
    first_wins,
    lifetime_values,
    value_summary,
)
from domain.pipeline import LOST, WON
from projections.campaigns.figures import (UNKNOWN_CHANNEL, AttributionRow, CampaignsReport, CampaignValue,
                                           ChannelValue, Tally, as_uuid, assemble)
from projections.campaigns.groups import CampaignGroups, split, without_cost
from projections.campaigns.rows import AMOUNT, DealFact, Facts, LeadFact, Plan, Registration, Response
from projections.ports import Store


def plans_as_of(store: Store, t: int) -> dict[str, Plan]:
    """The campaigns planned by `t` (µs), each with its status then (its last by `t`: rows in seq order)."""
    plans = {}
    for cid, name, channel, budget, currency, planned_at, status in store.query(
        "SELECT p.campaign_id, p.name, p.channel, p.budget_cents, p.currency, p.planned_at, s.status "
        "FROM campaigns_plans p JOIN campaigns_statuses s ON s.campaign_id = p.campaign_id "
        "WHERE p.planned_at <= ? AND s.occurred_at <= ? ORDER BY p.campaign_id, s.seq", [t, t],
    ):
        plans[cid] = Plan(name, channel, budget, currency, planned_at, status)
    return plans


def load_facts(store: Store, t: int, money: Conversion) -> Facts:
    """Every fact with business time at or before `t` (µs), money converted with `money`."""
    plans = plans_as_of(store, t)
    costs, unconverted_costs = {}, {}
    for cid, total in store.query("SELECT campaign_id, SUM(amount_cents) FROM campaigns_costs WHERE occurred_at <= ? "
                                  "GROUP BY campaign_id", [t]):
        converted = money.cents(int(total), plans[cid].currency)
        costs[cid] = 0 if converted is None else converted
        if converted is None:
            unconverted_costs[cid] = (plans[cid].currency, int(total))
    responses = store.query("SELECT campaign_id, occurred_at, kind, customer_id, lead_id FROM campaigns_responses "
                            "WHERE occurred_at <= ?", [t])
    leads = {lead_id: LeadFact(campaign, captured, qualified is not None and qualified <= t,
                               customer if converted is not None and converted <= t else None,
                               disqualified is not None and disqualified <= t)
             for lead_id, campaign, captured, qualified, converted, customer, disqualified in store.query(
                 "SELECT lead_id, campaign_id, captured_at, qualified_at, converted_at, customer_id, disqualified_at "
                 "FROM campaigns_leads WHERE captured_at <= ?", [t])}
    customers = {cid: Registration(channel, campaign, registered) for cid, channel, campaign, registered
                 in store.query("SELECT customer_id, channel, campaign_id, registered_at FROM campaigns_customers "
                                "WHERE registered_at <= ?", [t])}
    return Facts(plans, costs, [Response._make(r) for r in responses], leads, customers,
                 _deals(store, t, leads, money), unconverted_costs)


def deals_for_values(store: Store, t: int, money: Conversion) -> list[DealFact]:
    """The deals opened by `t` with their wins in force then, as `load_facts` has them but for the campaign of
    a deal that names none (its lead's, which lifetime values do not need): two queries instead of seven."""
    return _deals(store, t, {}, money)


def _wins_in_force(store: Store, t: int) -> dict[str, tuple[int, int] | str | None]:
    """Per deal with a win, loss or reopening by `t`: (instant, amount then) if the last of them was a win,
    LOST if a loss, None if a reopening."""
    wins: dict[str, tuple[int, int] | str | None] = {}
    amounts: dict[str, int] = {}
    for deal_id, at, kind, amount in store.query(
        "SELECT deal_id, occurred_at, kind, amount_cents FROM campaigns_deal_events WHERE occurred_at <= ? "
        "ORDER BY deal_id, seq", [t]
    ):
        if kind == AMOUNT:
            amounts[deal_id] = amount
        else:
            wins[deal_id] = (at, amounts[deal_id]) if kind == WON else LOST if kind == LOST else None
    return wins


def _deals(store: Store, t: int, leads: dict[str, LeadFact], money: Conversion) -> list[DealFact]:
    wins = _wins_in_force(store, t)
    deals = []
    for deal_id, customer_id, own_campaign, lead_id, currency in store.query(
        "SELECT deal_id, customer_id, campaign_id, lead_id, currency FROM campaigns_deals WHERE opened_at <= ?", [t]
    ):
        lead = leads.get(lead_id) if lead_id else None
        campaign_id = deal_campaign(own_campaign, lead.campaign_id if lead else None)
        won = wins.get(deal_id)
        if not isinstance(won, tuple):
            deals.append(DealFact(deal_id, customer_id, campaign_id, None, lost=won == LOST, lead_id=lead_id))
            continue
        at, amount = won
        revenue = money.cents(amount, currency)
        win = Win(deal_id, customer_id, campaign_id, at, 0 if revenue is None else revenue)
        deals.append(DealFact(deal_id, customer_id, campaign_id, win, None if revenue is not None else (currency, amount),
                              lead_id=lead_id))
    return deals




# --- deriving the figures -----------------------------------------------------------------------


def _tallies(facts: Facts) -> dict[str, Tally]:
    tallies = {cid: Tally(cost_cents=facts.costs.get(cid, 0)) for cid in facts.plans}
    for cid, (currency, cents) in facts.unconverted_costs.items():
        add_sums(tallies[cid].unconverted, {currency: cents})
    for response in facts.responses:
        tallies[response.campaign_id].responses[response.kind] += 1
    for lead in facts.leads.values():
        if tally := tallies.get(lead.campaign_id or ""):
            tally.leads += 1
            tally.qualified += lead.qualified
            tally.converted += lead.customer_id is not None
            tally.disqualified += lead.disqualified and not lead.qualified
            tally.qualified_disqualified += lead.disqualified and lead.qualified
    for deal in facts.deals:
        if tally := tallies.get(deal.campaign_id or ""):
            tally.deals += 1
            if deal.win:
                tally.won += 1
                tally.won_revenue_cents += deal.win.revenue_cents
                if deal.unconverted:
                    add_sums(tally.unconverted, dict([deal.unconverted]))
            tally.lost += deal.lost
    for win in first_wins(facts.wins).values():
        if tally := tallies.get(win.campaign_id or ""):
            tally.new_customers += 1
    return tallies



def _touches(facts: Facts) -> dict[str, list[Touch]]:
    """Each customer's campaign touches: responses by them or their originating lead, the capture of that
    lead, and their registration."""
    touches: dict[str, list[Touch]] = defaultdict(list)
    for response in facts.responses:
        lead = facts.leads.get(response.lead_id or "")
        for who in {response.customer_id, lead.customer_id if lead else None} - {None}:
            touches[who].append(Touch(response.at, response.campaign_id))
    for lead in facts.leads.values():
        if lead.customer_id and lead.campaign_id:
            touches[lead.customer_id].append(Touch(lead.captured_at, lead.campaign_id))
    for customer_id, registration in facts.customers.items():
        if registration.campaign_id:
            touches[customer_id].append(Touch(registration.registered_at, registration.campaign_id))
    return touches


def _attribution(facts: Facts, touches: dict[str, list[Touch]]) -> list[AttributionRow]:
    credit = {cid: AttributionCredit() for cid in [*facts.plans, None]}
    for win in facts.wins:
        first, last = (_planned(facts, cid) for cid in credited_campaigns(touches.get(win.customer_id, []), win.at))
        credit[first] = credit[first].plus_first_touch(win)
        credit[last] = credit[last].plus_last_touch(win)
    return [AttributionRow(as_uuid(cid), _name(facts, cid), **asdict(counts)) for cid, counts in credit.items()]


def _planned(facts: Facts, campaign_id: str | None) -> str | None:
    """The campaign id if it was planned by T, else None (counted as no campaign touch)."""
    return campaign_id if campaign_id in facts.plans else None


def _name(facts: Facts, campaign_id: str | None) -> str | None:
    return facts.plans[campaign_id].name if campaign_id else None


def _clv_by_channel(facts: Facts, values: dict[str, int]) -> list[ChannelValue]:
    groups: dict[str, list[int]] = defaultdict(list)
    for customer_id, value in values.items():
        registration = facts.customers.get(customer_id)
        groups[registration.channel if registration else UNKNOWN_CHANNEL].append(value)
    return [ChannelValue(channel, *value_summary(group)) for channel, group in sorted(groups.items())]


def _clv_by_first_touch(facts: Facts, values: dict[str, int], touches: dict[str, list[Touch]]) -> list[CampaignValue]:
    groups: dict[str | None, list[int]] = {cid: [] for cid in [*facts.plans, None]}
    for customer_id, value in values.items():
        groups[_planned(facts, first_and_last_touch(touches.get(customer_id, [])).first_touch)].append(value)
    return [CampaignValue(as_uuid(cid), _name(facts, cid), *value_summary(group)) for cid, group in groups.items()]


def _unconverted(facts: Facts, wanted: Any) -> dict[str, int]:
    """Every cost and won revenue (of the wanted campaigns, or customers with no campaign) without a rate."""
    total: dict[str, int] = {}
    for cid, (currency, cents) in facts.unconverted_costs.items():
        if wanted(cid):
            add_sums(total, {currency: cents})
    for deal in facts.deals:
        if deal.unconverted and wanted(_planned(facts, deal.campaign_id)):
            add_sums(total, dict([deal.unconverted]))
    return dict(sorted(total.items()))


def facts_report(as_of: datetime, facts: Facts, channel: str | None = None,
                 money: Conversion = Conversion()) -> CampaignsReport:
    """Every figure as of `as_of`; with `channel`, only that channel's campaigns and customers."""
    tallies, touches, values = _tallies(facts), _touches(facts), lifetime_values(facts.wins)
    return assemble(as_of, channel, facts.plans, tallies, _attribution(facts, touches),
                    _clv_by_channel(facts, values), _clv_by_first_touch(facts, values, touches),
                    lambda wanted: _unconverted(facts, wanted), money)


def grouped_report(as_of: datetime, facts: Facts, by: str, values: tuple[dict[str, str], dict[str, str]],
                   money: Conversion) -> CampaignGroups:
    return CampaignGroups(as_of, by, [{"key": {by: value}, **without_cost(facts_report(as_of, group, None, money)
                                                                          .to_dict(), by)}
                                      for value, group in split(facts, *values).items()])

