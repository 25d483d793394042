"""The campaigns read model: cost, responses, leads, deals, revenue, attribution and CLV, as of any instant.

Only facts are stored, each with its business time: campaign plans, status changes, costs and responses;
lead capture, qualification and conversion; customer registrations; deal openings, amounts, wins, losses
and reopenings. Nothing that combines several aggregates is precomputed, because their events may arrive
in any business-time order (a response can be recorded long after the lead it names was converted).
A query as of T reads the facts that had happened by T and derives every figure from them in Python.

Choices: a deal counts as won at T when its last win/loss/reopening by T was a win, with its amount at
that win; a deal belongs to its own campaign, else to the campaign of the lead it was converted from;
touches after a win do not count for that win; ties between touches at one instant go to the smaller
campaign id; CLV averages are over customers with at least one won deal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from uuid import UUID

from domain.campaign import CLOSED, LAUNCHED, PLANNED, Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.pipeline import LOST, WON
from domain.vocabulary import RESPONSE_KINDS
from projections.base import ReadModel, Rows
from projections.tables import Table, cents, from_micros, micros
from projections.ports import Store

AMOUNT, REOPENED = "amount", "reopened"
UNKNOWN_CHANNEL = "(unknown)"

PLANS = Table(
    "campaigns_plans",
    (("campaign_id", "TEXT"), ("name", "TEXT"), ("channel", "TEXT"), ("budget_cents", "BIGINT"),
     ("currency", "TEXT"), ("planned_at", "BIGINT")),
    ("campaign_id",),
)
STATUSES = Table(
    "campaigns_statuses",
    (("campaign_id", "TEXT"), ("seq", "INTEGER"), ("occurred_at", "BIGINT"), ("status", "TEXT")),
    ("campaign_id", "seq"),
)
COSTS = Table(
    "campaigns_costs",
    (("campaign_id", "TEXT"), ("seq", "INTEGER"), ("occurred_at", "BIGINT"), ("amount_cents", "BIGINT")),
    ("campaign_id", "seq"),
)
RESPONSES = Table(
    "campaigns_responses",
    (("campaign_id", "TEXT"), ("seq", "INTEGER"), ("occurred_at", "BIGINT"), ("kind", "TEXT"),
     ("customer_id", "TEXT"), ("lead_id", "TEXT")),
    ("campaign_id", "seq"),
    indexes=(("occurred_at",),),
)
LEADS = Table(
    "campaigns_leads",
    (("lead_id", "TEXT"), ("campaign_id", "TEXT"), ("captured_at", "BIGINT"), ("qualified_at", "BIGINT"),
     ("converted_at", "BIGINT"), ("customer_id", "TEXT")),
    ("lead_id",),
)
CUSTOMERS = Table(
    "campaigns_customers",
    (("customer_id", "TEXT"), ("channel", "TEXT"), ("campaign_id", "TEXT"), ("registered_at", "BIGINT")),
    ("customer_id",),
)
DEALS = Table(
    "campaigns_deals",
    (("deal_id", "TEXT"), ("customer_id", "TEXT"), ("campaign_id", "TEXT"), ("lead_id", "TEXT"),
     ("opened_at", "BIGINT")),
    ("deal_id",),
)
DEAL_EVENTS = Table(
    "campaigns_deal_events",
    (("deal_id", "TEXT"), ("seq", "INTEGER"), ("occurred_at", "BIGINT"), ("kind", "TEXT"),
     ("amount_cents", "BIGINT")),
    ("deal_id", "seq"),
    indexes=(("occurred_at",),),
)

_STATUS_OF = {Campaign.Planned: PLANNED, Campaign.Launched: LAUNCHED, Campaign.Closed: CLOSED}
_CLOSING_KIND = {Deal.Won: WON, Deal.Lost: LOST, Deal.Reopened: REOPENED}


def _text(value: UUID | None) -> str | None:
    return None if value is None else str(value)


class CampaignsReadModel(ReadModel):
    """Dated facts about campaigns and the leads, customers and deals they bring."""

    name = "campaigns"
    tables = (PLANS, STATUSES, COSTS, RESPONSES, LEADS, CUSTOMERS, DEALS, DEAL_EVENTS)

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return {
            Campaign.Planned: _campaign_planned, Campaign.Launched: _status_changed,
            Campaign.Closed: _status_changed, Campaign.CostRecorded: _cost_recorded,
            Campaign.ResponseRecorded: _response_recorded,
            Lead.Captured: _lead_captured, Lead.Qualified: _lead_qualified, Lead.Converted: _lead_converted,
            Customer.Registered: _customer_registered,
            Deal.Opened: _deal_opened, Deal.AmountChanged: _amount_changed,
            Deal.Won: _deal_closing, Deal.Lost: _deal_closing, Deal.Reopened: _deal_closing,
        }

    def prefetch(self, events: list[Any], rows: Rows) -> None:
        rows.prefetch(LEADS, [(str(e.originator_id),) for e in events
                              if isinstance(e, (Lead.Qualified, Lead.Converted))])


def _campaign_planned(event: Campaign.Planned, rows: Rows) -> None:
    rows.put(PLANS, {"campaign_id": str(event.originator_id), "name": event.name, "channel": event.channel,
                     "budget_cents": cents(event.budget), "currency": event.currency,
                     "planned_at": micros(event.occurred_at)})
    _status_changed(event, rows)


def _status_changed(event: Any, rows: Rows) -> None:
    rows.put(STATUSES, {"campaign_id": str(event.originator_id), "seq": event.originator_version,
                        "occurred_at": micros(event.occurred_at), "status": _STATUS_OF[type(event)]})


def _cost_recorded(event: Campaign.CostRecorded, rows: Rows) -> None:
    rows.put(COSTS, {"campaign_id": str(event.originator_id), "seq": event.originator_version,
                     "occurred_at": micros(event.occurred_at), "amount_cents": cents(event.amount)})


def _response_recorded(event: Campaign.ResponseRecorded, rows: Rows) -> None:
    rows.put(RESPONSES, {"campaign_id": str(event.originator_id), "seq": event.originator_version,
                         "occurred_at": micros(event.occurred_at), "kind": event.kind,
                         "customer_id": _text(event.customer_id), "lead_id": _text(event.lead_id)})


def _lead_captured(event: Lead.Captured, rows: Rows) -> None:
    rows.put(LEADS, {"lead_id": str(event.originator_id), "campaign_id": _text(event.campaign_id),
                     "captured_at": micros(event.occurred_at), "qualified_at": None, "converted_at": None,
                     "customer_id": None})


def _lead(event: Any, rows: Rows) -> dict[str, Any]:
    lead = rows.get(LEADS, str(event.originator_id))
    assert lead is not None, f"lead {event.originator_id} changed before it was captured"
    return lead


def _lead_qualified(event: Lead.Qualified, rows: Rows) -> None:
    rows.put(LEADS, {**_lead(event, rows), "qualified_at": micros(event.occurred_at)})


def _lead_converted(event: Lead.Converted, rows: Rows) -> None:
    rows.put(LEADS, {**_lead(event, rows), "converted_at": micros(event.occurred_at),
                     "customer_id": str(event.customer_id)})


def _customer_registered(event: Customer.Registered, rows: Rows) -> None:
    rows.put(CUSTOMERS, {"customer_id": str(event.originator_id), "channel": event.channel,
                         "campaign_id": _text(event.campaign_id), "registered_at": micros(event.occurred_at)})


def _deal_opened(event: Deal.Opened, rows: Rows) -> None:
    rows.put(DEALS, {"deal_id": str(event.originator_id), "customer_id": str(event.customer_id),
                     "campaign_id": _text(event.campaign_id), "lead_id": _text(event.lead_id),
                     "opened_at": micros(event.occurred_at)})
    _deal_event(event, AMOUNT, cents(event.amount), rows)


def _amount_changed(event: Deal.AmountChanged, rows: Rows) -> None:
    _deal_event(event, AMOUNT, cents(event.new_amount), rows)


def _deal_closing(event: Any, rows: Rows) -> None:
    _deal_event(event, _CLOSING_KIND[type(event)], None, rows)


def _deal_event(event: Any, kind: str, amount_cents: int | None, rows: Rows) -> None:
    rows.put(DEAL_EVENTS, {"deal_id": str(event.originator_id), "seq": event.originator_version,
                           "occurred_at": micros(event.occurred_at), "kind": kind, "amount_cents": amount_cents})


# --- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """What a campaign (or all campaigns of a channel) had achieved by an instant. Money in cents."""

    cost_cents: int
    responses: dict[str, int]
    leads: int
    qualified: int
    converted: int
    deals: int
    won: int
    won_revenue_cents: int
    new_customers: int
    roi: float | None  # (won revenue − cost) / cost
    cac_cents: int | None  # cost / new customers

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
    lead_to_qualified: float | None  # qualified / leads
    qualified_to_deal: float | None  # converted / qualified
    deal_to_won: float | None  # won / deals


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


@dataclass(frozen=True)
class _Plan:
    name: str
    channel: str
    budget_cents: int
    currency: str
    planned_at: int
    status: str


@dataclass(frozen=True)
class _Lead:
    campaign_id: str | None
    captured_at: int
    qualified: bool
    customer_id: str | None  # set once converted


@dataclass(frozen=True)
class _Deal:
    deal_id: str
    customer_id: str
    campaign_id: str | None  # its own, else its lead's
    won_at: int | None  # the win in force, None unless won
    revenue_cents: int  # its amount at that win


@dataclass(frozen=True)
class _Facts:
    plans: dict[str, _Plan]
    costs: dict[str, int]
    responses: list[tuple[str, int, str, str | None, str | None]]  # campaign, at, kind, customer, lead
    leads: dict[str, _Lead]
    customers: dict[str, tuple[str, str | None, int]]  # channel, campaign, registered at
    deals: list[_Deal]

    @property
    def won(self) -> list[_Deal]:
        return [deal for deal in self.deals if deal.won_at is not None]


def _load(store: Store, t: int) -> _Facts:
    """Every fact with business time at or before `t` (µs)."""
    statuses = dict(store.query(  # ordered by seq, so each campaign's last status wins
        "SELECT campaign_id, status FROM campaigns_statuses WHERE occurred_at <= ? ORDER BY campaign_id, seq", [t]))
    plans = {cid: _Plan(name, channel, budget, currency, planned_at, statuses[cid])
             for cid, name, channel, budget, currency, planned_at in store.query(
                 "SELECT campaign_id, name, channel, budget_cents, currency, planned_at FROM campaigns_plans "
                 "WHERE planned_at <= ?", [t])}
    costs = {cid: int(total) for cid, total in store.query(
        "SELECT campaign_id, SUM(amount_cents) FROM campaigns_costs WHERE occurred_at <= ? GROUP BY campaign_id", [t])}
    responses = store.query("SELECT campaign_id, occurred_at, kind, customer_id, lead_id FROM campaigns_responses "
                            "WHERE occurred_at <= ?", [t])
    leads = {lead_id: _Lead(campaign, captured, qualified is not None and qualified <= t,
                            customer if converted is not None and converted <= t else None)
             for lead_id, campaign, captured, qualified, converted, customer in store.query(
                 "SELECT lead_id, campaign_id, captured_at, qualified_at, converted_at, customer_id "
                 "FROM campaigns_leads WHERE captured_at <= ?", [t])}
    customers = {cid: (channel, campaign, registered) for cid, channel, campaign, registered in store.query(
        "SELECT customer_id, channel, campaign_id, registered_at FROM campaigns_customers WHERE registered_at <= ?",
        [t])}
    return _Facts(plans, costs, [tuple(r) for r in responses], leads, customers, _deals(store, t, leads))


def _deals(store: Store, t: int, leads: dict[str, _Lead]) -> list[_Deal]:
    wins: dict[str, tuple[int, int] | None] = {}
    amounts: dict[str, int] = {}
    for deal_id, at, kind, amount in store.query(
        "SELECT deal_id, occurred_at, kind, amount_cents FROM campaigns_deal_events WHERE occurred_at <= ? "
        "ORDER BY deal_id, seq", [t]
    ):
        if kind == AMOUNT:
            amounts[deal_id] = amount
        else:
            wins[deal_id] = (at, amounts[deal_id]) if kind == WON else None
    deals = []
    for deal_id, customer_id, campaign_id, lead_id in store.query(
        "SELECT deal_id, customer_id, campaign_id, lead_id FROM campaigns_deals WHERE opened_at <= ?", [t]
    ):
        lead = leads.get(lead_id) if lead_id else None
        won_at, revenue = wins.get(deal_id) or (None, 0)
        deals.append(_Deal(deal_id, customer_id, campaign_id or (lead.campaign_id if lead else None), won_at, revenue))
    return deals


# --- deriving the figures -----------------------------------------------------------------------


@dataclass
class _Tally:
    cost_cents: int = 0
    responses: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESPONSE_KINDS, 0))
    leads: int = 0
    qualified: int = 0
    converted: int = 0
    deals: int = 0
    won: int = 0
    won_revenue_cents: int = 0
    new_customers: int = 0

    def add(self, other: _Tally) -> None:
        for name, value in vars(other).items():
            if name == "responses":
                for kind, count in value.items():
                    self.responses[kind] += count
            else:
                setattr(self, name, getattr(self, name) + value)

    def freeze(self) -> Totals:
        cost = self.cost_cents
        return Totals(**vars(self) | {"responses": dict(self.responses)},
                      roi=(self.won_revenue_cents - cost) / cost if cost else None,
                      cac_cents=_divide(cost, self.new_customers))


def _divide(cents_total: int, count: int) -> int | None:
    """`cents_total / count` rounded half-even to whole cents, None when count is 0."""
    if not count:
        return None
    return int((Decimal(cents_total) / count).to_integral_value(rounding=ROUND_HALF_EVEN))


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _first_wins(facts: _Facts) -> dict[str, _Deal]:
    """Each customer's first won deal (earliest win in force; ties by deal id)."""
    first: dict[str, _Deal] = {}
    for deal in sorted(facts.won, key=lambda d: (d.won_at, d.deal_id)):
        first.setdefault(deal.customer_id, deal)
    return first


def _tallies(facts: _Facts) -> dict[str, _Tally]:
    tallies = {cid: _Tally(cost_cents=facts.costs.get(cid, 0)) for cid in facts.plans}
    for campaign_id, _, kind, _, _ in facts.responses:
        tallies[campaign_id].responses[kind] += 1
    for lead in facts.leads.values():
        if tally := tallies.get(lead.campaign_id or ""):
            tally.leads += 1
            tally.qualified += lead.qualified
            tally.converted += lead.customer_id is not None
    for deal in facts.deals:
        if tally := tallies.get(deal.campaign_id or ""):
            tally.deals += 1
            tally.won += deal.won_at is not None
            tally.won_revenue_cents += deal.revenue_cents
    for deal in _first_wins(facts).values():
        if tally := tallies.get(deal.campaign_id or ""):
            tally.new_customers += 1
    return tallies


def _channel_rows(facts: _Facts, tallies: dict[str, _Tally]) -> list[ChannelRow]:
    by_channel: dict[str, _Tally] = defaultdict(_Tally)
    campaigns: dict[str, int] = defaultdict(int)
    for cid, plan in facts.plans.items():
        by_channel[plan.channel].add(tallies[cid])
        campaigns[plan.channel] += 1
    return [ChannelRow(channel, campaigns[channel], tally.freeze(), _ratio(tally.qualified, tally.leads),
                       _ratio(tally.converted, tally.qualified), _ratio(tally.won, tally.deals))
            for channel, tally in sorted(by_channel.items())]


def _touches(facts: _Facts) -> dict[str, list[tuple[int, str]]]:
    """Each customer's campaign touches (at, campaign): responses by them or their originating lead,
    the capture of that lead, and their registration."""
    touches: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for campaign_id, at, _, customer_id, lead_id in facts.responses:
        lead = facts.leads.get(lead_id or "")
        for who in {customer_id, lead.customer_id if lead else None} - {None}:
            touches[who].append((at, campaign_id))
    for lead in facts.leads.values():
        if lead.customer_id and lead.campaign_id:
            touches[lead.customer_id].append((lead.captured_at, lead.campaign_id))
    for customer_id, (_, campaign_id, registered_at) in facts.customers.items():
        if campaign_id:
            touches[customer_id].append((registered_at, campaign_id))
    return touches


def _first_and_last(touches: list[tuple[int, str]]) -> tuple[str | None, str | None]:
    """The campaigns of the earliest and of the latest touch (ties at one instant: the smaller campaign id)."""
    if not touches:
        return None, None
    latest = max(at for at, _ in touches)
    return min(touches)[1], min(campaign for at, campaign in touches if at == latest)


def _attribution(facts: _Facts, touches: dict[str, list[tuple[int, str]]]) -> list[AttributionRow]:
    credit: dict[str | None, list[int]] = {cid: [0, 0, 0, 0] for cid in [*facts.plans, None]}
    for deal in facts.won:
        before = [touch for touch in touches.get(deal.customer_id, []) if touch[0] <= deal.won_at]
        for offset, campaign_id in zip((0, 2), _first_and_last(before)):
            counts = credit[campaign_id if campaign_id in facts.plans else None]
            counts[offset] += 1
            counts[offset + 1] += deal.revenue_cents
    return [AttributionRow(_uuid(cid), facts.plans[cid].name if cid else None, *counts)
            for cid, counts in credit.items()]


def _uuid(value: str | None) -> UUID | None:
    return UUID(value) if value else None


def _customer_values(facts: _Facts) -> dict[str, int]:
    """Per customer with a won deal: the sum of their won deals' amounts (cents)."""
    values: dict[str, int] = defaultdict(int)
    for deal in facts.won:
        values[deal.customer_id] += deal.revenue_cents
    return dict(values)


def _clv_by_channel(facts: _Facts, values: dict[str, int]) -> list[ChannelValue]:
    groups: dict[str, list[int]] = defaultdict(list)
    for customer_id, value in values.items():
        registered = facts.customers.get(customer_id)
        groups[registered[0] if registered else UNKNOWN_CHANNEL].append(value)
    return [ChannelValue(channel, len(group), sum(group), _divide(sum(group), len(group)))
            for channel, group in sorted(groups.items())]


def _clv_by_first_touch(facts: _Facts, values: dict[str, int],
                        touches: dict[str, list[tuple[int, str]]]) -> list[CampaignValue]:
    groups: dict[str | None, list[int]] = {cid: [] for cid in [*facts.plans, None]}
    for customer_id, value in values.items():
        first, _ = _first_and_last(touches.get(customer_id, []))
        groups[first if first in facts.plans else None].append(value)
    return [CampaignValue(_uuid(cid), facts.plans[cid].name if cid else None, len(group), sum(group),
                          _divide(sum(group), len(group)))
            for cid, group in groups.items()]


def _campaign_row(campaign_id: str, plan: _Plan, tally: _Tally) -> CampaignRow:
    return CampaignRow(UUID(campaign_id), plan.name, plan.channel, plan.status, from_micros(plan.planned_at),
                       plan.budget_cents, plan.currency, tally.freeze())


def _build_report(as_of: datetime, facts: _Facts, channel: str | None = None) -> CampaignsReport:
    """Every figure as of `as_of`; with `channel`, only that channel's campaigns and customers."""
    tallies, touches, values = _tallies(facts), _touches(facts), _customer_values(facts)
    order = sorted(facts.plans, key=lambda cid: (facts.plans[cid].planned_at, facts.plans[cid].name, cid))

    def wanted(campaign_id: str | None) -> bool:
        return channel is None or (campaign_id is not None and facts.plans[campaign_id].channel == channel)

    campaigns = [_campaign_row(cid, facts.plans[cid], tallies[cid]) for cid in order if wanted(cid)]
    rank = {cid: i for i, cid in enumerate(order)}

    def ordered(rows: list[Any]) -> list[Any]:
        return sorted((r for r in rows if wanted(_text(r.campaign_id))),
                      key=lambda r: rank.get(_text(r.campaign_id) or "", len(rank)))

    return CampaignsReport(
        as_of=as_of, channel=channel, campaigns=campaigns,
        channels=[row for row in _channel_rows(facts, tallies) if channel in (None, row.channel)],
        attribution=ordered(_attribution(facts, touches)),
        clv_by_channel=[row for row in _clv_by_channel(facts, values) if channel in (None, row.channel)],
        clv_by_first_touch=ordered(_clv_by_first_touch(facts, values, touches)),
    )


class CampaignQueries:
    """Answers campaign, channel, attribution and lifetime-value questions as of an instant."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def report(self, as_of: datetime, channel: str | None = None) -> CampaignsReport:
        return _build_report(as_of, _load(self.store, micros(as_of)), channel)

    def customer_values(self, as_of: datetime) -> dict[UUID, int]:
        """Lifetime value (cents) of every customer with a deal won as of `as_of`."""
        return {UUID(cid): value for cid, value in _customer_values(_load(self.store, micros(as_of))).items()}

    def summary(self, as_of: datetime) -> dict[str, Any]:
        """Every figure this read model answers as of `as_of`, JSON-able."""
        facts = _load(self.store, micros(as_of))
        return {"report": _build_report(as_of, facts).to_dict(),
                "customer_values": dict(sorted(_customer_values(facts).items()))}
