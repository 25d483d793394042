"""Marketing figures, defined once: what a campaign's money returned (ROI), what a customer cost to acquire
(CAC), what customers are worth (CLV), how leads convert, and which campaign a win is credited to.

Read models gather the facts as of an instant (`projections.campaigns`) and ask these rules for the
figures, so a second report on campaigns cannot count them differently. The rules are pure: money is whole
cents (int), so sums are exact; instants are numbers that order in time (the read models pass microseconds
since the epoch); ids are text that orders like the ids themselves (a UUID's text does). A figure with
nothing to divide by is None, never 0 or infinity: "no figure yet" is the truth before the first cost,
customer or lead, and 0 would read as a real (and alarming) result.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import NamedTuple


def cents_each(total_cents: int, count: int) -> int | None:
    """`total_cents / count` in whole cents, None when count is 0.

    Rounded half to even (7 / 2 → 4, 5 / 2 → 2), so that averages rounded over many campaigns and
    channels drift neither up nor down; Decimal, so no float error decides a tie."""
    if not count:
        return None
    return int((Decimal(total_cents) / count).to_integral_value(rounding=ROUND_HALF_EVEN))


def roi(won_revenue_cents: int, cost_cents: int) -> float | None:
    """Return on investment: (won revenue − cost) / cost; −1.0 is all money lost, 0.0 breaks even.

    Won revenue only (deals won and not reopened or lost since), since open pipeline has earned nothing
    yet. None without cost: a campaign that has cost nothing so far has no return to speak of."""
    if not cost_cents:
        return None
    return (won_revenue_cents - cost_cents) / cost_cents


def customer_acquisition_cost(cost_cents: int, new_customers: int) -> int | None:
    """CAC: cost over the customers acquired (see `first_wins` for who counts as acquired, and by whom).

    None before the first such customer: money spent with nobody acquired yet has no price per head."""
    return cents_each(cost_cents, new_customers)


def deal_campaign(own: str | None, lead_campaign: str | None) -> str | None:
    """The campaign a deal belongs to: the one it was opened for, else the one of the lead it was converted
    from. A deal naming a campaign says so itself; one that names none still came through its lead's."""
    return own or lead_campaign


class Win(NamedTuple):
    """A deal won as of an instant (its last win, loss or reopening by then was a win): who bought, through
    which campaign (see `deal_campaign`), when, and for its amount at that win."""

    deal_id: str
    customer_id: str
    campaign_id: str | None
    at: int
    revenue_cents: int


def first_wins(wins: Iterable[Win]) -> dict[str, Win]:
    """Each customer's first win, by customer id: the deal that made them a customer, so its campaign is
    the one that acquired them (a new customer in its CAC). Ties at one instant go to the smaller deal id,
    so the answer does not depend on the order the deals were read in."""
    first: dict[str, Win] = {}
    for win in sorted(wins, key=lambda w: (w.at, w.deal_id)):
        first.setdefault(win.customer_id, win)
    return first


def lifetime_values(wins: Iterable[Win]) -> dict[str, int]:
    """Customer lifetime value (CLV) as of an instant, by customer id: the sum of their wins, in cents.

    Realised value only, no forecast: what a customer has bought so far and still holds as won. A customer
    without a win has no entry, so averages over customers are averages over buyers (see `value_summary`)."""
    values: dict[str, int] = defaultdict(int)
    for win in wins:
        values[win.customer_id] += win.revenue_cents
    return dict(values)


class ValueSummary(NamedTuple):
    """CLV of a group of customers (a channel, a first-touch campaign): how many, total and average cents."""

    customers: int
    total_cents: int
    average_cents: int | None


def value_summary(values: Sequence[int]) -> ValueSummary:
    """The CLV of a group from its customers' lifetime values (buyers only, see `lifetime_values`); the
    average is None for a group without buyers rather than 0, which would say they bought for nothing."""
    total = sum(values)
    return ValueSummary(len(values), total, cents_each(total, len(values)))


class Touch(NamedTuple):
    """A customer's contact with a campaign at an instant; touches order by instant, then by campaign id.
    Attribution by variant gives the pair (campaign id, variant) as `campaign_id` and is credited per pair."""

    at: int
    campaign_id: str | tuple[str, str]


class Credited(NamedTuple):
    """The campaigns credited under first-touch and under last-touch attribution (None: no touch)."""

    first_touch: str | None
    last_touch: str | None


def first_and_last_touch(touches: Sequence[Touch]) -> Credited:
    """The campaigns of the earliest and of the latest touch. Ties at one instant go to the smaller campaign
    id (in both models), so the credit does not depend on the order the facts arrived in."""
    if not touches:
        return Credited(None, None)
    latest = max(touch.at for touch in touches)
    return Credited(min(touches).campaign_id, min(t.campaign_id for t in touches if t.at == latest))


def credited_campaigns(touches: Iterable[Touch], won_at: int) -> Credited:
    """Who gets the credit for a win: the first and last of the customer's touches at or before it.
    A touch after the win cannot have brought it about (a reply a week after signing credits nothing)."""
    return first_and_last_touch([touch for touch in touches if touch.at <= won_at])


@dataclass(frozen=True)
class AttributionCredit:
    """Won deals and revenue (cents) credited to one campaign by first touch and by last touch.

    Both models side by side, because each alone misleads: first touch credits the campaigns that open
    doors, last touch those that close them; a campaign strong in one and absent in the other is telling."""

    first_touch_deals: int = 0
    first_touch_revenue_cents: int = 0
    last_touch_deals: int = 0
    last_touch_revenue_cents: int = 0

    def plus_first_touch(self, win: Win) -> AttributionCredit:
        return replace(self, first_touch_deals=self.first_touch_deals + 1,
                       first_touch_revenue_cents=self.first_touch_revenue_cents + win.revenue_cents)

    def plus_last_touch(self, win: Win) -> AttributionCredit:
        return replace(self, last_touch_deals=self.last_touch_deals + 1,
                       last_touch_revenue_cents=self.last_touch_revenue_cents + win.revenue_cents)
