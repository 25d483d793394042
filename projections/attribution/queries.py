"""The query side of the attribution read model: each won deal's value shared over its customer's campaign
touches as of an instant, under every model of `domain.attribution`, per campaign, channel and variant; and
CAC and CLV per channel and acquisition cohort.

A deal counts as won at T when its last win, loss or reopening by T was a win, for its amount then (as the
campaigns report counts it). A customer's touches are the campaigns report's (`projections.campaigns.
facts_report`): responses by them or by a lead converted into them by T, that lead's capture (its campaign
and variant), and their registration's campaign; only those at or before the win count. A touch naming a
campaign not planned by T, and the whole value of a won deal without any touch, go to "no campaign", so
that under every model the credits of all rows sum to the won revenue.

W-shaped milestones (Choice): the lead was "created" when the lead the deal was converted from was captured
(a deal opened directly: the customer's earliest lead converted by T); the "opportunity" when the deal was
opened. Money is converted into the reporting currency at the rates in force at T; a won deal or a cost
without a rate is credited nowhere and listed, by currency, in `unconverted`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from domain.attribution import HALF_LIFE_DAYS, MODELS, Milestones, credit, require_model
from domain.exchange_rates import Conversion, add_sums
from domain.marketing import Touch, cents_each
from domain.periods import UTC, Period, periods_between, require_grain
from domain.pipeline import WON
from projections.attribution.handlers import AMOUNT
from projections.ports import Store
from projections.tables import from_micros, micros

AXES = ("campaign", "channel", "variant")
COHORT_GRAINS = ("month", "quarter")
UNKNOWN_CHANNEL = "(unknown)"  # a customer registered, or a campaign planned, without a channel
Credit = tuple[str | None, str]  # (campaign id, or None: no campaign; variant, "" for none)

# The deals won as of T (one parameter: T): each deal's last win, loss or reopening by T, if it was a win.
_WON = ("SELECT e.deal_id, e.seq, e.occurred_at FROM (SELECT deal_id, MAX(seq) AS seq FROM attribution_deal_events "
        f"WHERE occurred_at <= ? AND kind <> '{AMOUNT}' GROUP BY deal_id) last JOIN attribution_deal_events e "
        f"ON e.deal_id = last.deal_id AND e.seq = last.seq WHERE e.kind = '{WON}'")
# The touches by T of the customers with a deal won as of T (six parameters, each T): rows of (customer,
# lead captured — on a lead's capture only —, campaign or NULL, variant, instant). Responses by the customer,
# responses by a lead converted into them by T (once when the response names both), those leads' captures,
# and the customer's registration through a campaign.
_TOUCHES = (
    f"WITH won AS (SELECT DISTINCT d.customer_id FROM ({_WON}) w JOIN attribution_deals d ON d.deal_id = w.deal_id), "
    "leads AS (SELECT c.lead_id, c.customer_id FROM attribution_conversions c JOIN won ON won.customer_id = c.customer_id "
    "WHERE c.converted_at <= ?) "
    "SELECT r.customer_id, NULL, r.campaign_id, r.variant, r.occurred_at FROM attribution_responses r "
    "JOIN won ON won.customer_id = r.customer_id WHERE r.occurred_at <= ? "
    "UNION ALL SELECT l.customer_id, NULL, r.campaign_id, r.variant, r.occurred_at FROM attribution_responses r "
    "JOIN leads l ON l.lead_id = r.lead_id WHERE r.occurred_at <= ? AND (r.customer_id IS NULL OR r.customer_id <> l.customer_id) "
    "UNION ALL SELECT l.customer_id, p.lead_id, p.campaign_id, p.variant, p.captured_at FROM attribution_leads p "
    "JOIN leads l ON l.lead_id = p.lead_id WHERE p.captured_at <= ? "
    "UNION ALL SELECT c.customer_id, NULL, c.campaign_id, '', c.registered_at FROM attribution_customers c "
    "JOIN won ON won.customer_id = c.customer_id WHERE c.registered_at <= ? AND c.campaign_id IS NOT NULL"
)


def require_axis(by: str) -> str:
    if by not in AXES:
        raise ValueError(f"attribution is by one of {', '.join(AXES)}, not {by!r}")
    return by


def require_half_life(days: float) -> float:
    if not (isinstance(days, (int, float)) and math.isfinite(days) and days > 0):
        raise ValueError(f"the half-life of time decay must be a positive number of days, not {days!r}")
    return float(days)


def require_cohort_grain(grain: str) -> str:
    if grain not in COHORT_GRAINS:
        raise ValueError(f"a cohort is one {' or '.join(COHORT_GRAINS)}, not {grain!r}")
    return require_grain(grain)


@dataclass(frozen=True)
class WonDeal:
    """A deal won as of T, its value in the reporting currency, and what its credits are shared over."""

    deal_id: str
    customer_id: str
    won_at: int
    value_cents: int
    touches: tuple[Touch, ...]  # campaign_id holds "campaign<SEP>variant"
    milestones: Milestones


@dataclass
class _Facts:
    """What had happened by T, as the credits and cohorts need it."""

    campaigns: dict[str, tuple[str, str, str]]  # id → name, channel, currency
    wins: list[WonDeal]
    values: dict[str, int] = field(default_factory=dict)  # customer → won cents (converted)
    unconverted: dict[str, int] = field(default_factory=dict)  # won value without a rate at T, per currency


class AttributionQueries:
    """Multi-touch credits and cohort CAC/CLV as of an instant, from the attribution read model's tables."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def credits(self, as_of: datetime, model: str, by: str = "campaign", half_life_days: float = HALF_LIFE_DAYS,
                money: Conversion = Conversion()) -> dict[str, Any]:
        """Won revenue credited per campaign, channel or variant under `model` (JSON-able rows, most credited first)."""
        require_axis(by)
        facts, per_deal = self._per_deal(as_of, model, half_life_days, money)
        return {"as_of": as_of, "model": model, "by": by, "half_life_days": half_life_days,
                "currency": money.reporting, "won_deals": len(facts.wins),
                "won_revenue_cents": sum(deal.value_cents for deal in facts.wins),
                "rows": _rows([shares for _, shares in per_deal], by, facts.campaigns),
                "unconverted": dict(sorted(facts.unconverted.items()))}

    def per_deal(self, as_of: datetime, model: str, half_life_days: float = HALF_LIFE_DAYS,
                 money: Conversion = Conversion()) -> list[tuple[WonDeal, dict[Credit, int]]]:
        """Each deal won as of `as_of` with its cents per (campaign, variant) under `model`."""
        return self._per_deal(as_of, model, half_life_days, money)[1]

    def _per_deal(self, as_of: datetime, model: str, half_life_days: float, money: Conversion
                  ) -> tuple[_Facts, list[tuple[WonDeal, dict[Credit, int]]]]:
        require_model(model), require_half_life(half_life_days)
        facts = self._facts(micros(as_of), money)
        return facts, [(deal, self._credited(deal, facts, model, half_life_days)) for deal in facts.wins]

    def cohorts(self, as_of: datetime, grain: str = "month", zone: tzinfo = UTC,
                money: Conversion = Conversion()) -> dict[str, Any]:
        """CAC and CLV per channel and acquisition cohort (the `grain` of `zone` a customer registered in)."""
        require_cohort_grain(grain)
        t = micros(as_of)
        facts = self._facts(t, money, touched=False)
        customers = self.store.query("SELECT customer_id, channel, registered_at FROM attribution_customers "
                                     "WHERE registered_at <= ?", [t])
        costs, unconverted_costs = self._costs(t, facts.campaigns, money)
        label = _labeller([at for _, _, at in customers] + [at for _, at, _ in costs], grain, zone)
        cells: dict[tuple[str, Period], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for customer_id, channel, registered_at in customers:
            channel = channel or UNKNOWN_CHANNEL
            cell = cells[(channel, label(registered_at))]
            cell["customers"] += 1
            if customer_id in facts.values:
                cell["buyers"] += 1
                cell["won_cents"] += facts.values[customer_id]
        for channel, at, cents in costs:
            cells[(channel, label(at))]["cost_cents"] += cents
        return {"as_of": as_of, "grain": grain, "zone": str(zone), "currency": money.reporting,
                "cohorts": [_cohort_row(channel, period, cell) for (channel, period), cell
                            in sorted(cells.items(), key=lambda item: (item[0][0], item[0][1].first))],
                "unconverted": dict(sorted(add_sums(dict(facts.unconverted), unconverted_costs).items()))}

    def summary(self, as_of: datetime, zone: tzinfo = UTC, money: Conversion = Conversion()) -> dict[str, Any]:
        """Every answer as of `as_of`, JSON-able: each model by variant (the finest: campaign and channel are
        its sums), time decay at two half-lives, and the monthly and quarterly cohorts."""
        credits = {model: self.credits(as_of, model, "variant", money=money) for model in MODELS}
        credits["time_decay_1.5"] = self.credits(as_of, "time_decay", "variant", 1.5, money)
        return {"credits": credits, **{f"cohorts_{grain}": self.cohorts(as_of, grain, zone, money)
                                       for grain in COHORT_GRAINS}}

    # --- loading the facts as of T -------------------------------------------------------------

    def _facts(self, t: int, money: Conversion, touched: bool = True) -> _Facts:
        """The facts by `t`; `touched`: with the won deals' touches and milestones (cohorts need neither)."""
        campaigns = {cid: (name, channel or UNKNOWN_CHANNEL, currency) for cid, name, channel, currency in self.store.query(
            "SELECT campaign_id, name, channel, currency FROM attribution_campaigns WHERE planned_at <= ?", [t])}
        facts = _Facts(campaigns, [])
        touches, captured, first_captured = self._touches(t) if touched else ({}, {}, {})
        for deal_id, won_at, customer_id, lead_id, opened_at, currency, amount in self.store.query(
            f"SELECT w.deal_id, w.occurred_at, d.customer_id, d.lead_id, d.opened_at, d.currency, (SELECT a.amount_cents "
            f"FROM attribution_deal_events a WHERE a.deal_id = w.deal_id AND a.kind = '{AMOUNT}' AND a.seq < w.seq "
            f"ORDER BY a.seq DESC LIMIT 1) FROM ({_WON}) w JOIN attribution_deals d ON d.deal_id = w.deal_id "
            "ORDER BY w.deal_id", [t]
        ):
            value = money.cents(amount, currency)
            if value is None:
                add_sums(facts.unconverted, {currency: amount})
                continue
            facts.values[customer_id] = facts.values.get(customer_id, 0) + value
            lead_created = captured.get(lead_id or "", first_captured.get(customer_id))
            facts.wins.append(WonDeal(deal_id, customer_id, won_at, value, tuple(touches.get(customer_id, ())),
                                      Milestones(lead_created, opened_at)))
        return facts

    def _touches(self, t: int) -> tuple[dict[str, list[Touch]], dict[str, int], dict[str, int]]:
        """The touches by `t` of each customer with a deal won as of `t`; when each lead converted into one of
        them by `t` was captured; per such customer, the earliest such capture (the W-shaped "lead created" of
        a deal opened without a lead). Only won customers' rows are read (≈ 1 in 5 customers of the demo)."""
        touches: dict[str, list[Touch]] = defaultdict(list)
        captured: dict[str, int] = {}
        first_captured: dict[str, int] = {}
        for customer_id, lead_id, campaign_id, variant, at in self.store.query(_TOUCHES, [t] * 6):
            if lead_id is not None:  # the capture of a lead converted into the customer
                captured[lead_id] = at
                first_captured[customer_id] = min(at, first_captured.get(customer_id, at))
            if campaign_id is not None:
                # Keyed by the (campaign, variant) pair itself, not a joined string: no key text can split it wrongly.
                touches[customer_id].append(Touch(at, (campaign_id, variant)))
        return touches, captured, first_captured

    def _costs(self, t: int, campaigns: dict[str, tuple[str, str, str]], money: Conversion
               ) -> tuple[list[tuple[str, int, int]], dict[str, int]]:
        """Every cost by `t`: (its campaign's channel, when, cents converted), and those without a rate."""
        costs, unconverted = [], {}
        for campaign_id, at, amount in self.store.query(
            "SELECT campaign_id, occurred_at, amount_cents FROM attribution_costs WHERE occurred_at <= ?", [t]
        ):
            _, channel, currency = campaigns[campaign_id]  # a cost follows its campaign's plan on its stream
            converted = money.cents(amount, currency)
            if converted is None:
                add_sums(unconverted, {currency: amount})
            else:
                costs.append((channel, at, converted))
        return costs, unconverted

    @staticmethod
    def _credited(deal: WonDeal, facts: _Facts, model: str, half_life_days: float) -> dict[Credit, int]:
        """The deal's cents per (campaign, variant): a touch of a campaign not planned by T, and a deal
        without a touch at or before its win, credit no campaign (None)."""
        shares = credit(deal.touches, deal.won_at, deal.value_cents, model, deal.milestones, half_life_days)
        if not shares:
            return {(None, ""): deal.value_cents}
        credited: dict[Credit, int] = defaultdict(int)
        for (campaign_id, variant), cents in shares.items():
            credited[(campaign_id, variant) if campaign_id in facts.campaigns else (None, "")] += cents
        return dict(credited)


# --- shaping the answers ---------------------------------------------------------------------------


def _rows(per_deal: list[dict[Credit, int]], by: str, campaigns: dict[str, tuple[str, str, str]]
          ) -> list[dict[str, Any]]:
    key: Callable[[Credit], Any] = {
        "campaign": lambda c: c[0], "variant": lambda c: c,
        "channel": lambda c: campaigns[c[0]][1] if c[0] else None}[by]
    credited: dict[Any, int] = defaultdict(int)
    deals: dict[Any, int] = defaultdict(int)
    for shares in per_deal:
        grouped: dict[Any, int] = defaultdict(int)
        for where, cents in shares.items():
            grouped[key(where)] += cents
        for group, cents in grouped.items():
            credited[group] += cents
            deals[group] += cents > 0
    rows = [_row(by, group, campaigns) | {"credited_cents": cents, "credited_deals": deals[group]}
            for group, cents in credited.items()]
    return sorted(rows, key=lambda row: (-row["credited_cents"], str(row)))


def _row(by: str, group: Any, campaigns: dict[str, tuple[str, str, str]]) -> dict[str, Any]:
    if by == "channel":
        return {"channel": group}
    campaign_id = group if by == "campaign" else group[0]
    name, channel, _ = campaigns.get(campaign_id or "", (None, None, None))
    row = {"campaign_id": campaign_id, "name": name, "channel": channel}
    return row | {"variant": group[1]} if by == "variant" else row


def _labeller(instants: list[int], grain: str, zone: tzinfo) -> Callable[[int], Period]:
    """A function from an instant (µs) to its period: the periods between the first and last instant are
    made once and found by bisection (≈ 1 µs an instant rather than a zone conversion each)."""
    if not instants:
        return lambda at: Period(grain, from_micros(at).date(), zone)  # never called
    periods = periods_between(from_micros(min(instants)), from_micros(max(instants) + 1), grain, zone)
    starts = [micros(period.start) for period in periods]
    return lambda at: periods[bisect_right(starts, at) - 1]


def _cohort_row(channel: str, period: Period, cell: dict[str, int]) -> dict[str, Any]:
    customers, cost, won = cell["customers"], cell["cost_cents"], cell["won_cents"]
    return {"channel": channel, **period.to_dict(), "customers": customers, "buyers": cell["buyers"],
            "cost_cents": cost, "cac_cents": cents_each(cost, customers), "won_cents": won,
            "clv_cents": cents_each(won, customers)}
