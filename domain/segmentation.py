"""Customer value segments: RFM scores and value tiers by FIXED thresholds, and their timeline.

Thresholds are constants, never quantiles, so a customer's segment depends only on their own deals:
it never changes because someone else bought. At an instant T:

- A **purchase** is a won deal: it happens when the deal is won, for the deal's amount then, and it
  stops counting from the instant the deal is reopened (a reopened deal is no longer won).
- **Recency R** from the age of the last purchase: ≤ 30 days → 5, ≤ 90 → 4, ≤ 180 → 3, ≤ 365 → 2,
  older → 1, no purchase → 0. Ages are exact: 30 days after a purchase still scores 5, one
  microsecond later 4.
- **Frequency F**: purchases in the window (those at most 365 days old): ≥ 5 → 5, else their number.
- **Monetary M**: their amount in CNY: ≥ 1,000,000 → 5, ≥ 500,000 → 4, ≥ 200,000 → 3, ≥ 50,000 → 2,
  > 0 → 1, none → 0. There are no exchange rates in the domain, so purchases in other currencies count
  for R and F but add nothing to M.
- **Tier**: `high_value` if R ≥ 4 and F + M ≥ 4 (e.g. bought in the last 90 days, once for 200,000
  CNY or more, or twice for 50,000 or more); else `potential` if R ≥ 3 and F + M ≥ 3, or the customer
  has at least one open deal (new prospects and customers buying again); else `ordinary`. (F + M ≥ 7
  left high value empty on the demo data, where most customers buy once, about 120,000 CNY.)
- **Preferred pipeline** (the domain has no product catalogue; a pipeline is the product line a deal
  belongs to): the pipeline of most purchases, ties broken alphabetically.

Because ages grow with the mere passing of time, the segment changes at instants where nothing
happens; `segment_timeline` computes every change from a customer's purchases and open deals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

HIGH_VALUE, POTENTIAL, ORDINARY = "high_value", "potential", "ordinary"
TIERS = (HIGH_VALUE, POTENTIAL, ORDINARY)

RECENCY_DAYS = ((30, 5), (90, 4), (180, 3), (365, 2))  # age at most this many days → score
LAPSED_RECENCY = 1  # the last purchase is older than a year
WINDOW = timedelta(days=365)  # frequency and monetary count purchases at most this old
MAX_FREQUENCY = 5
MONETARY_CURRENCY = "CNY"
MONETARY_CNY = ((Decimal(1_000_000), 5), (Decimal(500_000), 4), (Decimal(200_000), 3), (Decimal(50_000), 2))
HIGH_VALUE_MIN_RECENCY, HIGH_VALUE_MIN_FM = 4, 4
POTENTIAL_MIN_RECENCY, POTENTIAL_MIN_FM = 3, 3
_JUST_AFTER = timedelta(microseconds=1)  # the first instant past an inclusive age limit


def recency_score(age: timedelta | None) -> int:
    """R from the age of the last purchase (None: no purchase)."""
    if age is None:
        return 0
    return next((score for days, score in RECENCY_DAYS if age <= timedelta(days=days)), LAPSED_RECENCY)


def frequency_score(purchases: int) -> int:
    return min(purchases, MAX_FREQUENCY)


def monetary_score(amount_cny: Decimal) -> int:
    if amount_cny <= 0:
        return 0
    return next((score for minimum, score in MONETARY_CNY if amount_cny >= minimum), 1)


def tier_of(recency: int, frequency: int, monetary: int, open_deals: int) -> str:
    if recency >= HIGH_VALUE_MIN_RECENCY and frequency + monetary >= HIGH_VALUE_MIN_FM:
        return HIGH_VALUE
    if (recency >= POTENTIAL_MIN_RECENCY and frequency + monetary >= POTENTIAL_MIN_FM) or open_deals > 0:
        return POTENTIAL
    return ORDINARY


def most_frequent(values: Iterable[str]) -> str | None:
    """The most frequent value, ties broken alphabetically; None for no values."""
    counts = Counter(values)
    return min(counts, key=lambda value: (-counts[value], value)) if counts else None


@dataclass(frozen=True)
class Purchase:
    """A won deal: counts from `at` until `withdrawn_at` (the deal was reopened), if ever."""

    at: datetime
    amount: Decimal
    currency: str
    pipeline: str
    withdrawn_at: datetime | None = None

    def counts_at(self, instant: datetime) -> bool:
        return self.at <= instant and (self.withdrawn_at is None or self.withdrawn_at > instant)

    def changes(self) -> list[datetime]:
        """Instants where this purchase may change a segment: made, withdrawn, and each age limit passed."""
        limits = [timedelta(days=days) for days, _ in RECENCY_DAYS] + [WINDOW]
        return [self.at, *(self.at + limit + _JUST_AFTER for limit in limits),
                *([self.withdrawn_at] if self.withdrawn_at else [])]


@dataclass(frozen=True)
class OpenDeal:
    """A deal open during `[start, end)` (end None: still open)."""

    start: datetime
    end: datetime | None = None

    def covers(self, instant: datetime) -> bool:
        return self.start <= instant and (self.end is None or self.end > instant)


@dataclass(frozen=True)
class Segment:
    """A customer's scores and tier at an instant, with the facts they come from."""

    recency: int
    frequency: int
    monetary: int
    monetary_amount: Decimal  # CNY won in the window
    open_deals: int
    last_purchase_at: datetime | None
    preferred_pipeline: str | None

    @property
    def tier(self) -> str:
        return tier_of(self.recency, self.frequency, self.monetary, self.open_deals)


def segment_at(instant: datetime, purchases: Sequence[Purchase], open_deals: Sequence[OpenDeal]) -> Segment:
    counting = [p for p in purchases if p.counts_at(instant)]
    in_window = [p for p in counting if instant - p.at <= WINDOW]
    amount = sum((p.amount for p in in_window if p.currency == MONETARY_CURRENCY), Decimal(0))
    last = max((p.at for p in counting), default=None)
    return Segment(
        recency=recency_score(None if last is None else instant - last),
        frequency=frequency_score(len(in_window)),
        monetary=monetary_score(amount),
        monetary_amount=amount,
        open_deals=sum(deal.covers(instant) for deal in open_deals),
        last_purchase_at=last,
        preferred_pipeline=most_frequent(p.pipeline for p in counting),
    )


@dataclass(frozen=True)
class SegmentInterval:
    """The segment during `[valid_from, valid_to)`; `tier_since` is when the customer entered its tier."""

    valid_from: datetime
    valid_to: datetime | None
    segment: Segment
    tier_since: datetime


def segment_timeline(start: datetime, end: datetime | None, purchases: Sequence[Purchase],
                     open_deals: Sequence[OpenDeal]) -> list[SegmentInterval]:
    """The segment from `start` until `end` (None: for ever) as maximal intervals of equal segments.

    It depends only on the set of purchases and open deals, not on their order, and the intervals up
    to any instant T depend only on what had happened by T.
    """
    changes = {start, *(i for p in purchases for i in p.changes()),
               *(i for d in open_deals for i in (d.start, d.end) if i is not None)}
    intervals: list[SegmentInterval] = []
    for instant in sorted(i for i in changes if i >= start and (end is None or i < end)):
        segment = segment_at(instant, purchases, open_deals)
        if intervals and intervals[-1].segment == segment:
            continue
        since = instant
        if intervals:
            previous = intervals.pop()
            intervals.append(SegmentInterval(previous.valid_from, instant, previous.segment, previous.tier_since))
            since = previous.tier_since if previous.segment.tier == segment.tier else instant
        intervals.append(SegmentInterval(instant, None, segment, since))
    if intervals and end is not None:
        last = intervals.pop()
        intervals.append(SegmentInterval(last.valid_from, end, last.segment, last.tier_since))
    return intervals
