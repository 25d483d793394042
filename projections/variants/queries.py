"""The query side of the variants read model: each variant's funnel as of any instant T, and whether the
differences between variants mean anything.

The funnel of a variant, as of T: exposures (how many were sent or shown, `Campaign.ExposuresRecorded`) →
responses (respondents — leads or customers, each counted once — whose response named the variant) → leads
captured from it → those qualified → those converted into customers → those with a deal won (a deal opened
from the lead, won at T) and the revenue of those deals at T. Money as the campaigns read model does it: per
currency, and in the reporting currency at the rates in force at T (`Conversion`), amounts without a rate
listed apart (`unconverted`).

Each variant is compared with the baseline (the control: the first variant defined, or one asked for) at one
step's rate over exposures (default: responses ÷ exposures) by `domain.experiments` — two-proportion z-test
with Newcombe's interval, Bayesian probability to beat, the exposures still needed, and a verdict that says
"not enough data" rather than naming a false winner — and all variants together by Pearson's chi-square.
The definition, stopped variants and declared winner shown are those in force at T.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from domain.exchange_rates import Conversion, add_sums
from domain.experiments import NOT_ENOUGH_DATA, Arm, chi_square_p_value, compare_all
from projections.ports import Store
from projections.tables import from_micros, micros
from projections.variants.rows import AMOUNT, LOST, OPENED, REOPENED, STOPPED, WON

# (variant, lead, deal, currency) → the deal's status and amount (cents) at T
Deals = dict[tuple[str, str, str, str], tuple[str, int]]
STEPS = ("exposures", "responses", "leads", "qualified", "customers", "won")
DEFAULT_STEP = "responses"


def require_step(step: str) -> str:
    """A funnel step whose rate over exposures is compared (not exposures itself)."""
    if step not in STEPS[1:]:
        raise ValueError(f"a variant comparison is at one of the steps {', '.join(STEPS[1:])}, not {step!r}")
    return step


@dataclass(frozen=True)
class Decision:
    """A variant stopped or declared the winner: which, why, by whom, when."""

    variant: str
    reason: str
    actor: str
    at: datetime

    def to_dict(self) -> dict[str, object]:
        return {"variant": self.variant, "reason": self.reason, "actor": self.actor, "at": self.at.isoformat()}


@dataclass(frozen=True)
class VariantFunnel:
    """One variant as defined at T, and its funnel by then. Money in cents."""

    definition: dict[str, Any]  # key, name, copy, channel, landing_page, offer, weight
    share: float  # its weight's share of the split
    counts: dict[str, int]  # by `STEPS`
    revenue_cents: int  # in the report's currency
    revenue_by_currency: dict[str, int]
    unconverted: dict[str, int]  # revenue in currencies without a rate at T
    rate: float | None  # the compared step ÷ exposures (None: no exposures)
    stopped: Decision | None

    @property
    def key(self) -> str:
        return str(self.definition["key"])

    def to_dict(self) -> dict[str, object]:
        return {**self.definition, "share": self.share, **self.counts, "revenue_cents": self.revenue_cents,
                "revenue_by_currency": self.revenue_by_currency, "unconverted": self.unconverted, "rate": self.rate,
                "stopped": self.stopped.to_dict() if self.stopped else None}


@dataclass(frozen=True)
class VariantsReport:
    """A campaign's A/B test as of T."""

    campaign_id: str
    as_of: datetime
    step: str
    baseline: str | None  # the variant the others are compared with (None: no variants defined by T)
    currency: str
    variants: list[VariantFunnel]
    comparisons: list[dict[str, object]]  # `domain.experiments.Comparison.to_dict`, one per non-baseline variant
    chi_square_p: float | None  # all variants at one rate? (None: some arm too small for the test)
    winner: Decision | None
    rates: dict[str, object] = field(default_factory=dict)  # the conversion used (`Conversion.to_dict`)

    def to_dict(self) -> dict[str, object]:
        return {"campaign_id": self.campaign_id, "as_of": self.as_of.isoformat(), "step": self.step,
                "baseline": self.baseline, "currency": self.currency,
                "variants": [variant.to_dict() for variant in self.variants], "comparisons": self.comparisons,
                "chi_square_p": self.chi_square_p, "winner": self.winner.to_dict() if self.winner else None,
                "rates": self.rates}


class VariantQueries:
    """Reports of campaigns' variants as of any instant."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def report(self, campaign_id: str, as_of: datetime, step: str = DEFAULT_STEP, baseline: str | None = None,
               money: Conversion = Conversion()) -> VariantsReport:
        """ValueError (a sentence) for an unknown step, or a baseline the campaign did not define by T."""
        step, at = require_step(step), micros(as_of)
        definition = self._definition(campaign_id, at)
        keys = [str(variant["key"]) for variant in definition]
        if baseline is not None and baseline not in keys:
            raise ValueError(f"the campaign defines no variant {baseline!r} as of {as_of.isoformat()} "
                             f"(its variants: {', '.join(keys) or 'none'})")
        deals = self._deals(campaign_id, at)
        counts, revenue = self._counts(campaign_id, at, deals), _revenue(deals)
        stopped, winner = self._decisions(campaign_id, at)
        total = sum(int(variant["weight"]) for variant in definition)
        funnels = [_funnel(variant, total, counts[str(variant["key"])], revenue.get(str(variant["key"]), {}),
                           stopped.get(str(variant["key"])), step, money) for variant in definition]
        base = baseline if baseline is not None else (keys[0] if keys else None)
        return VariantsReport(campaign_id, as_of, step, base, money.reporting, funnels,
                              _comparisons(funnels, base, step), _chi_square(funnels, step), winner, money.to_dict())

    def campaigns(self, as_of: datetime) -> list[str]:
        """The campaigns that had defined variants by `as_of`."""
        return [row[0] for row in self.store.query(
            "SELECT DISTINCT campaign_id FROM variants_definitions WHERE occurred_at <= ? ORDER BY campaign_id",
            [micros(as_of)])]

    def summary(self, as_of: datetime, money: Conversion = Conversion()) -> dict[str, Any]:
        """Every campaign's test as of `as_of` (equivalence checks): one report each holds every step's count;
        the other steps' comparisons are checked by tests/support/variant_histories.py."""
        return {campaign: self.report(campaign, as_of, money=money).to_dict() for campaign in self.campaigns(as_of)}

    # --- the facts by T

    def _definition(self, campaign_id: str, at: int) -> list[dict[str, Any]]:
        rows = self.store.query("SELECT variants FROM variants_definitions WHERE campaign_id = ? AND occurred_at <= ? "
                                "ORDER BY seq DESC LIMIT 1", [campaign_id, at])
        return orjson.loads(rows[0][0]) if rows else []

    def _counts(self, campaign_id: str, at: int, deals: Deals) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STEPS, 0))
        for variant, exposures in self.store.query(
                "SELECT variant, SUM(count) FROM variants_exposures WHERE campaign_id = ? AND occurred_at <= ? "
                "GROUP BY variant", [campaign_id, at]):
            counts[variant]["exposures"] = int(exposures)
        # Respondents, not responses: a lead's and, once it was converted by T, its customer's are one person.
        for variant, responses in self.store.query(
                "SELECT r.variant, COUNT(DISTINCT COALESCE(c.customer_id, r.stream_id)) FROM variants_responses r "
                "LEFT JOIN variants_conversions c ON c.lead_id = r.stream_id AND c.converted_at <= ? "
                "WHERE r.campaign_id = ? AND r.occurred_at <= ? GROUP BY r.variant", [at, campaign_id, at]):
            counts[variant]["responses"] = int(responses)
        for variant, leads, qualified, customers in self.store.query(
                "SELECT variant, COUNT(*), SUM(CASE WHEN qualified_at <= ? THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN converted_at <= ? THEN 1 ELSE 0 END) FROM variants_leads "
                "WHERE campaign_id = ? AND captured_at <= ? GROUP BY variant", [at, at, campaign_id, at]):
            counts[variant].update(leads=int(leads), qualified=int(qualified or 0), customers=int(customers or 0))
        won: dict[str, set[str]] = defaultdict(set)
        for (variant, lead, _, _), (status, _) in deals.items():
            if status == WON:
                won[variant].add(lead)
        for variant, leads in won.items():
            counts[variant]["won"] = len(leads)
        return counts

    def _deals(self, campaign_id: str, at: int) -> Deals:
        """Each deal opened from a lead of one of the campaign's variants by T: (variant, lead, deal, currency) →
        its status and amount at T (the deal's events folded in order)."""
        deals: Deals = {}
        for variant, lead, deal, currency, step, amount in self.store.query(
                "SELECT l.variant, l.lead_id, d.deal_id, d.currency, e.step, e.amount_cents FROM variants_leads l "
                "JOIN variants_deals d ON d.lead_id = l.lead_id JOIN variants_deal_events e ON e.deal_id = d.deal_id "
                "WHERE l.campaign_id = ? AND l.captured_at <= ? AND e.occurred_at <= ? ORDER BY d.deal_id, e.seq",
                [campaign_id, at, at]):
            key = (variant, lead, deal, currency)
            status, cents = deals.get(key, (OPENED, 0))
            deals[key] = _step(status, cents, step, amount)
        return deals

    def _decisions(self, campaign_id: str, at: int) -> tuple[dict[str, Decision], Decision | None]:
        stopped: dict[str, Decision] = {}
        winner = None
        for decision, variant, reason, actor, occurred in self.store.query(
                "SELECT decision, variant, reason, actor, occurred_at FROM variants_decisions WHERE campaign_id = ? "
                "AND occurred_at <= ? ORDER BY seq", [campaign_id, at]):
            made = Decision(variant, reason, actor, from_micros(occurred))
            if decision == STOPPED:
                stopped[variant] = made
            else:
                winner = made
        return stopped, winner


def _revenue(deals: Deals) -> dict[str, dict[str, int]]:
    """Per variant, the won deals' amounts at T, per currency."""
    revenue: dict[str, dict[str, int]] = defaultdict(dict)
    for (variant, _, _, currency), (status, cents) in deals.items():
        if status == WON:
            add_sums(revenue[variant], {currency: cents})
    return revenue


def _step(status: str, cents: int, step: str, amount: int | None) -> tuple[str, int]:
    """A deal's (status, amount) after one more of its events."""
    if step in (OPENED, AMOUNT):
        return (OPENED if step == OPENED else status), int(amount or 0)
    return {WON: WON, LOST: LOST, REOPENED: OPENED}[step], cents


def _funnel(variant: dict[str, Any], total: int, counts: dict[str, int], revenue: dict[str, int],
            stopped: Decision | None, step: str, money: Conversion) -> VariantFunnel:
    converted = money.convert(revenue)
    exposures = counts["exposures"]
    return VariantFunnel(variant, int(variant["weight"]) / total, counts, converted.cents, dict(sorted(revenue.items())),
                         dict(converted.unconverted), counts[step] / exposures if exposures else None, stopped)


def _arm(funnel: VariantFunnel, step: str) -> Arm | None:
    """The variant's exposures and conversions at `step`; None when it counts more of them than exposures (its
    exposures not recorded, or recorded short): no rate can be tested then."""
    exposures, conversions = funnel.counts["exposures"], funnel.counts[step]
    return Arm(funnel.key, exposures, conversions) if conversions <= exposures else None


def _comparisons(funnels: list[VariantFunnel], baseline: str | None, step: str) -> list[dict[str, object]]:
    control = next((funnel for funnel in funnels if funnel.key == baseline), None)
    if control is None:
        return []
    others = [funnel for funnel in funnels if funnel.key != baseline]
    base, arms = _arm(control, step), [_arm(funnel, step) for funnel in others]
    if base is None:
        return [_unfit(control, funnel, base, arm, step) for funnel, arm in zip(others, arms)]
    decided = iter(compare_all(base, [arm for arm in arms if arm is not None]))  # Holm over those tested together
    return [next(decided).to_dict() if arm is not None else _unfit(control, funnel, base, arm, step)
            for funnel, arm in zip(others, arms)]


def _unfit(control: VariantFunnel, variant: VariantFunnel, base: Arm | None, arm: Arm | None,
           step: str) -> dict[str, object]:
    short = ", ".join(f.key for f, found in ((control, base), (variant, arm)) if found is None)
    return {"control": control.key, "variant": variant.key, "difference": None, "interval": None, "p_value": None,
            "p_adjusted": None, "probability_to_beat": None, "needed_per_arm": None, "verdict": NOT_ENOUGH_DATA,
            "reason": f"{short}: more {step} than exposures recorded; record the exposures first"}


def _chi_square(funnels: list[VariantFunnel], step: str) -> float | None:
    arms = [_arm(funnel, step) for funnel in funnels]
    return chi_square_p_value(arms) if all(arm is not None for arm in arms) else None  # type: ignore[arg-type]
