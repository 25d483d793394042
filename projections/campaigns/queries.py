"""The query side of the campaigns read model: cost, responses, leads, deals, revenue, attribution and CLV,
as of any instant.

A query as of T loads the facts that had happened by T (`rows.Facts`) and derives every figure from them
in Python; the rules (ROI, CAC, CLV, conversion ratios, attribution credit) are `domain.marketing`'s.
Choices of this read model: a deal counts as won at T when its last win/loss/reopening by T was a win,
with its amount at that win; a campaign's new customers are those whose first win is one of its deals;
a customer's touches are responses by them or by the lead they were converted from, the capture of that
lead and their registration; a touch naming a campaign not planned by T counts as no campaign touch.

Money is in the reporting currency, each amount converted at the rate in force at T (`Conversion`): a
campaign's cost (in its own currency) and its won revenue (in each deal's) are then comparable, and ROI
and CAC mean something when a campaign in CNY brings deals in USD. An amount whose currency has no rate at
T is never added: it counts 0 in the figures and is listed, by currency, in `unconverted` (the campaign's,
the channel's and the report's); a campaign with an unconverted cost or revenue has no ROI and no CAC, as
neither could be right.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.exchange_rates import Conversion, add_sums
from domain.funnel_rules import win_rate, win_rate_note
from domain.marketing import (
    AttributionCredit,
    Touch,
    Win,
    credited_campaigns,
    customer_acquisition_cost,
    deal_campaign,
    first_and_last_touch,
    first_wins,
    lifetime_values,
    roi,
    value_summary,
)
from domain.pipeline import LOST, WON
from domain.vocabulary import RESPONSE_KINDS
from projections.campaigns.groups import CampaignGroups, only, property_names, require_axis, split, values_as_of, without_cost
from projections.campaigns.rows import AMOUNT, DealFact, Facts, LeadFact, Plan, Registration, Response, id_text
from projections.ports import Store
from projections.tables import from_micros, micros

UNKNOWN_CHANNEL = "(unknown)"


# --- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """What a campaign (or all campaigns of a channel) had achieved by an instant. Money in cents."""

    cost_cents: int
    responses: dict[str, int]
    leads: int
    qualified: int  # qualified by the instant (converted or disqualified since included)
    converted: int
    disqualified: int  # disqualified before being qualified; leads − qualified − disqualified are still new
    qualified_disqualified: int  # disqualified after being qualified; qualified − converted − these are open
    deals: int
    won: int
    lost: int  # deals lost (and not reopened) by the instant; deals − won − lost are still open
    won_revenue_cents: int
    new_customers: int
    roi: float | None  # (won revenue − cost) / cost: domain.marketing.roi
    cac_cents: int | None  # cost / new customers: domain.marketing.customer_acquisition_cost
    unconverted: dict[str, int] = field(default_factory=dict)  # cost and won revenue without a rate at T

    @property
    def response_count(self) -> int:
        return sum(self.responses.values())


@dataclass(frozen=True)
class CampaignRow:
    campaign_id: UUID
    name: str
    channel: str
    status: str
    planned_at: datetime
    budget_cents: int
    currency: str
    totals: Totals


@dataclass(frozen=True)
class ChannelRow:
    channel: str
    campaigns: int
    totals: Totals
    # Among decided leads only, open ones apart (see Totals): qualified / (qualified + disqualified), and
    # converted / (converted + disqualified after qualifying); None with no decided lead (notes say why).
    lead_to_qualified: float | None
    lead_to_qualified_note: str | None
    qualified_to_deal: float | None
    qualified_to_deal_note: str | None
    # A win rate: won / (won + lost), open deals apart (domain.funnel_rules.win_rate); its note says why None.
    deal_to_won: float | None
    deal_to_won_note: str | None


@dataclass(frozen=True)
class AttributionRow:
    """Won deals and revenue credited to a campaign (None: no campaign touch before the win)."""

    campaign_id: UUID | None
    name: str | None
    first_touch_deals: int
    first_touch_revenue_cents: int
    last_touch_deals: int
    last_touch_revenue_cents: int


@dataclass(frozen=True)
class ChannelValue:
    """Lifetime value of the customers acquired through a channel (those with a won deal)."""

    channel: str
    customers: int
    total_cents: int
    average_cents: int | None


@dataclass(frozen=True)
class CampaignValue:
    """Lifetime value of the customers whose first touch was a campaign (None: no campaign touch)."""

    campaign_id: UUID | None
    name: str | None
    customers: int
    total_cents: int
    average_cents: int | None


@dataclass(frozen=True)
class CampaignsReport:
    as_of: datetime
    channel: str | None
    campaigns: list[CampaignRow]
    channels: list[ChannelRow]
    attribution: list[AttributionRow]
    clv_by_channel: list[ChannelValue]
    clv_by_first_touch: list[CampaignValue]
    currency: str = "CNY"  # of every amount but budgets (each in its campaign's `currency`)
    rates: dict[str, Any] = field(default_factory=dict)  # the rates used: currency → rate and its date
    unconverted: dict[str, int] = field(default_factory=dict)  # every cost and won revenue without a rate at T

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# --- facts as of T ------------------------------------------------------------------------------


def _load(store: Store, t: int, money: Conversion) -> Facts:
    """Every fact with business time at or before `t` (µs), money converted with `money`."""
    statuses = dict(store.query(  # ordered by seq, so each campaign's last status wins
        "SELECT campaign_id, status FROM campaigns_statuses WHERE occurred_at <= ? ORDER BY campaign_id, seq", [t]))
    plans = {cid: Plan(name, channel, budget, currency, planned_at, statuses[cid])
             for cid, name, channel, budget, currency, planned_at in store.query(
                 "SELECT campaign_id, name, channel, budget_cents, currency, planned_at FROM campaigns_plans "
                 "WHERE planned_at <= ?", [t])}
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


@dataclass
class _Tally:
    cost_cents: int = 0
    responses: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESPONSE_KINDS, 0))
    leads: int = 0
    qualified: int = 0
    converted: int = 0
    disqualified: int = 0
    qualified_disqualified: int = 0
    deals: int = 0
    won: int = 0
    lost: int = 0
    won_revenue_cents: int = 0
    new_customers: int = 0
    unconverted: dict[str, int] = field(default_factory=dict)

    def add(self, other: _Tally) -> None:
        for name, value in vars(other).items():
            if name == "responses":
                for kind, count in value.items():
                    self.responses[kind] += count
            elif name == "unconverted":
                add_sums(self.unconverted, value)
            else:
                setattr(self, name, getattr(self, name) + value)

    def freeze(self) -> Totals:
        complete = not self.unconverted  # with part of the money unconverted, no ROI or CAC would be right
        return Totals(**vars(self) | {"responses": dict(self.responses), "unconverted": dict(self.unconverted)},
                      roi=roi(self.won_revenue_cents, self.cost_cents) if complete else None,
                      cac_cents=customer_acquisition_cost(self.cost_cents, self.new_customers) if complete else None)


def _tallies(facts: Facts) -> dict[str, _Tally]:
    tallies = {cid: _Tally(cost_cents=facts.costs.get(cid, 0)) for cid in facts.plans}
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


def _channel_rows(facts: Facts, tallies: dict[str, _Tally]) -> list[ChannelRow]:
    by_channel: dict[str, _Tally] = defaultdict(_Tally)
    campaigns: dict[str, int] = defaultdict(int)
    for cid, plan in facts.plans.items():
        by_channel[plan.channel].add(tallies[cid])
        campaigns[plan.channel] += 1
    return [ChannelRow(channel, campaigns[channel], tally.freeze(),
                       win_rate(tally.qualified, tally.disqualified), win_rate_note(tally.qualified, tally.disqualified),
                       win_rate(tally.converted, tally.qualified_disqualified),
                       win_rate_note(tally.converted, tally.qualified_disqualified),
                       win_rate(tally.won, tally.lost), win_rate_note(tally.won, tally.lost))
            for channel, tally in sorted(by_channel.items())]


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
    return [AttributionRow(_uuid(cid), _name(facts, cid), **asdict(counts)) for cid, counts in credit.items()]


def _planned(facts: Facts, campaign_id: str | None) -> str | None:
    """The campaign id if it was planned by T, else None (counted as no campaign touch)."""
    return campaign_id if campaign_id in facts.plans else None


def _name(facts: Facts, campaign_id: str | None) -> str | None:
    return facts.plans[campaign_id].name if campaign_id else None


def _uuid(value: str | None) -> UUID | None:
    return UUID(value) if value else None


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
    return [CampaignValue(_uuid(cid), _name(facts, cid), *value_summary(group)) for cid, group in groups.items()]


def _campaign_row(campaign_id: str, plan: Plan, tally: _Tally) -> CampaignRow:
    return CampaignRow(UUID(campaign_id), plan.name, plan.channel, plan.status, from_micros(plan.planned_at),
                       plan.budget_cents, plan.currency, tally.freeze())


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


def _build_report(as_of: datetime, facts: Facts, channel: str | None = None,
                  money: Conversion = Conversion()) -> CampaignsReport:
    """Every figure as of `as_of`; with `channel`, only that channel's campaigns and customers."""
    tallies, touches, values = _tallies(facts), _touches(facts), lifetime_values(facts.wins)
    order = sorted(facts.plans, key=lambda cid: (facts.plans[cid].planned_at, facts.plans[cid].name, cid))

    def wanted(campaign_id: str | None) -> bool:
        return channel is None or (campaign_id is not None and facts.plans[campaign_id].channel == channel)

    campaigns = [_campaign_row(cid, facts.plans[cid], tallies[cid]) for cid in order if wanted(cid)]
    rank = {cid: i for i, cid in enumerate(order)}

    def ordered(rows: list[Any]) -> list[Any]:
        return sorted((r for r in rows if wanted(id_text(r.campaign_id))),
                      key=lambda r: rank.get(id_text(r.campaign_id) or "", len(rank)))

    return CampaignsReport(
        as_of=as_of, channel=channel, campaigns=campaigns,
        channels=[row for row in _channel_rows(facts, tallies) if channel in (None, row.channel)],
        attribution=ordered(_attribution(facts, touches)),
        clv_by_channel=[row for row in _clv_by_channel(facts, values) if channel in (None, row.channel)],
        clv_by_first_touch=ordered(_clv_by_first_touch(facts, values, touches)),
        currency=money.reporting, rates=money.to_dict()["rates"],  # type: ignore[arg-type]
        unconverted=_unconverted(facts, wanted),
    )


class CampaignQueries:
    """Answers campaign, channel, attribution and lifetime-value questions as of an instant."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def report(self, as_of: datetime, channel: str | None = None, money: Conversion = Conversion()) -> CampaignsReport:
        """Money in `money.reporting` at its rates (default: CNY only, every other currency unconverted)."""
        return _build_report(as_of, _load(self.store, micros(as_of), money), channel, money)

    def grouped(self, as_of: datetime, by: str, money: Conversion = Conversion()) -> CampaignGroups:
        """The report per value of `by` (region, industry, or a lead's property as of `as_of`): see groups.py."""
        t = micros(as_of)
        facts = _load(self.store, t, money)
        return _grouped(as_of, facts, require_axis(by), values_as_of(self.store, t, by), money)

    def filtered(self, as_of: datetime, properties: tuple[tuple[str, str], ...],
                 money: Conversion = Conversion()) -> dict[str, Any]:
        """The report over only the leads, deals and responses with every (name, value) as of `as_of` (name:
        region, industry or a property, as `grouped`'s `by`), cost, ROI and CAC null: the dict of that group."""
        t = micros(as_of)
        facts = _load(self.store, t, money)
        for name, value in properties:
            facts = only(facts, value, *values_as_of(self.store, t, require_axis(name)))
        report = _build_report(as_of, facts, None, money).to_dict()
        return {"properties": dict(properties), **without_cost(report, "/".join(dict(properties)))}

    def customer_values(self, as_of: datetime, money: Conversion = Conversion()) -> dict[UUID, int]:
        """Lifetime value (cents in `money.reporting`) of every customer with a deal won as of `as_of`; a win
        without a rate at `as_of` adds nothing (the report lists it in `unconverted`)."""
        return self.customer_values_and_unconverted(as_of, money)[0]

    def customer_values_and_unconverted(self, as_of: datetime, money: Conversion = Conversion()
                                        ) -> tuple[dict[UUID, int], dict[UUID, dict[str, int]]]:
        """`customer_values`, and per customer its wins without a rate at `as_of`, cents per currency (they
        count 0 in its value: a report shows them beside it, never drops them)."""
        facts = _load(self.store, micros(as_of), money)
        unconverted: dict[UUID, dict[str, int]] = {}
        for deal in facts.deals:
            if deal.win is not None and deal.unconverted:
                add_sums(unconverted.setdefault(UUID(deal.customer_id), {}), dict([deal.unconverted]))
        return {UUID(cid): value for cid, value in lifetime_values(facts.wins).items()}, unconverted

    def summary(self, as_of: datetime, money: Conversion = Conversion()) -> dict[str, Any]:
        """Every figure this read model answers as of `as_of`, JSON-able."""
        facts = _load(self.store, micros(as_of), money)
        t = micros(as_of)
        return {"report": _build_report(as_of, facts, None, money).to_dict(),
                "customer_values": dict(sorted(lifetime_values(facts.wins).items())),
                "groups": {by: _grouped(as_of, facts, by, values_as_of(self.store, t, by), money).to_dict()
                           for by in ("region", "industry", *property_names(self.store, t))}}


def _grouped(as_of: datetime, facts: Facts, by: str, values: tuple[dict[str, str], dict[str, str]],
             money: Conversion) -> CampaignGroups:
    return CampaignGroups(as_of, by, [{"key": {by: value}, **without_cost(_build_report(as_of, group, None, money)
                                                                        .to_dict(), by)}
                                      for value, group in split(facts, *values).items()])
