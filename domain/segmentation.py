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
  > 0 → 1, none → 0. A purchase in another currency counts in CNY at the rate in force when it was made
  (`Purchase.converted`, worked out by the read model from the exchange-rate events): a customer's value
  is what they paid, in the thresholds' currency, not a figure that moves with the market while nothing
  happens. One made when no rate into CNY was known counts for R and F, and is kept apart, by currency,
  in `Segment.unconverted`: never added to M unconverted.
- **Tier**: `high_value` if R ≥ 4 and F + M ≥ 4 (e.g. bought in the last 90 days, once for 200,000
  CNY or more, or twice for 50,000 or more); else `potential` if R ≥ 3 and F + M ≥ 3, or the customer
  has at least one open deal (new prospects and customers buying again); else `ordinary`. (F + M ≥ 7
  left high value empty on the demo data, where most customers buy once, about 120,000 CNY.)
- **Preferred pipeline** (the domain has no product catalogue; a pipeline is the product line a deal
  belongs to): the pipeline of most purchases, ties broken alphabetically.
- **Preferred channel**: the channel of most touches, ties broken alphabetically; with no touch, the
  channel the customer was acquired through.

Because ages grow with the mere passing of time, the segment changes at instants where nothing
happens; `segment_timeline` computes every change from a customer's purchases and open deals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from domain.vocabulary import UNKNOWN

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
_RECENCY_LIMITS = tuple((timedelta(days=days), score) for days, score in RECENCY_DAYS)
_RECENCY_CHANGES = tuple(limit + _JUST_AFTER for limit, _ in _RECENCY_LIMITS)  # ages where R drops


def recency_score(age: timedelta | None) -> int:
    """R from the age of the last purchase (None: no purchase)."""
    if age is None:
        return 0
    return next((score for limit, score in _RECENCY_LIMITS if age <= limit), LAPSED_RECENCY)


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
    return most_counted(Counter(values))


def preferred_channel(touch_channels: Iterable[str], acquisition_channel: str | None) -> str | None:
    """The channel of most touches (ties alphabetical), else the acquisition channel (None: unknown). A touch on
    an `unknown` channel says nothing of a preference, so it does not count."""
    return most_frequent(c for c in touch_channels if c != UNKNOWN) or acquisition_channel


def most_counted(counts: Counter[str]) -> str | None:
    """The value of the highest positive count, ties broken alphabetically; None for none."""
    counted = [value for value, count in counts.items() if count > 0]
    return min(counted, key=lambda value: (-counts[value], value)) if counted else None


@dataclass(frozen=True)
class Purchase:
    """A won deal: counts from `at` until `withdrawn_at` (the deal was reopened), if ever."""

    at: datetime
    amount: Decimal
    currency: str
    pipeline: str
    withdrawn_at: datetime | None = None
    converted: Decimal | None = None  # the amount in MONETARY_CURRENCY at the rate in force at `at`, if any

    @property
    def monetary_amount(self) -> Decimal | None:
        """The amount M counts, in CNY; None: no rate into CNY was known when it was made."""
        return self.amount if self.currency == MONETARY_CURRENCY else self.converted

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
    unconverted: tuple[tuple[str, Decimal], ...] = ()  # (currency, amount) won in the window without a rate

    @property
    def tier(self) -> str:
        return tier_of(self.recency, self.frequency, self.monetary, self.open_deals)


def segment_at(instant: datetime, purchases: Sequence[Purchase], open_deals: Sequence[OpenDeal]) -> Segment:
    counting = [p for p in purchases if p.counts_at(instant)]
    in_window = [p for p in counting if instant - p.at <= WINDOW]
    amount = sum((p.monetary_amount for p in in_window if p.monetary_amount is not None), Decimal(0))
    unconverted: Counter[str] = Counter()
    for p in in_window:
        if p.monetary_amount is None:
            unconverted[p.currency] += p.amount
    last = max((p.at for p in counting), default=None)
    return Segment(
        recency=recency_score(None if last is None else instant - last),
        frequency=frequency_score(len(in_window)),
        monetary=monetary_score(amount),
        monetary_amount=amount,
        open_deals=sum(deal.covers(instant) for deal in open_deals),
        last_purchase_at=last,
        preferred_pipeline=most_frequent(p.pipeline for p in counting),
        unconverted=_by_currency(unconverted),
    )


def _by_currency(amounts: Counter[str]) -> tuple[tuple[str, Decimal], ...]:
    return tuple(sorted((currency, amount) for currency, amount in amounts.items() if amount))


@dataclass(frozen=True)
class SegmentInterval:
    """The segment during `[valid_from, valid_to)`; `tier_since` is when the customer entered its tier."""

    valid_from: datetime
    valid_to: datetime | None
    segment: Segment
    tier_since: datetime


def segment_timeline(start: datetime, end: datetime | None, purchases: Sequence[Purchase],
                     open_deals: Sequence[OpenDeal], after: SegmentInterval | None = None) -> list[SegmentInterval]:
    """The segment from `start` until `end` (None: for ever) as maximal intervals of equal segments.

    Given `after`, an interval of this timeline known not to change, only the rest is worked out: the
    result starts with `after` and goes on from its end.

    It depends only on the set of purchases and open deals, not on their order, and the intervals up
    to any instant T depend only on what had happened by T. By definition the segment may change only
    at `start`, a deal opening or closing, or a purchase's `changes()`; one sweep through time keeps
    `segment_at`'s facts up to date and visits only the instants where one of them changes, or where
    the latest purchase passes an age limit (an older purchase's limits change nothing): O(m log m)
    for m purchases and deals, where evaluating every instant from scratch was O(m²): 1,000 purchases
    have ≈ 6,000 such instants, ≈ 6 million purchase checks from scratch (2.1 s; the sweep 0.03 s).
    """
    sweep = _Sweep(purchases, open_deals)

    def evaluated() -> Iterator[tuple[datetime, Segment]]:
        instant: datetime | None = start if after is None else after.valid_to
        while instant is not None and (end is None or instant < end):
            yield instant, sweep.segment_at(instant)
            instant = sweep.next_change(instant)

    return merged_timeline(evaluated(), end, after)


def merged_timeline(evaluated: Iterable[tuple[datetime, Segment]], end: datetime | None,
                    after: SegmentInterval | None = None) -> list[SegmentInterval]:
    """Segments evaluated at increasing instants (from the first until `end`) as maximal intervals of
    equal segments, each knowing since when the customer has been in its tier; following `after`, the
    interval that ends at the first instant, if given."""
    intervals: list[SegmentInterval] = [] if after is None else [after]
    for instant, segment in evaluated:
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


# What happens to a purchase or an open deal at an instant; at one instant, additions come first, so no
# count ever goes below zero.
_COUNTS, _ENTERS_WINDOW, _OPENS, _STOPS_COUNTING, _LEAVES_WINDOW, _CLOSES = range(6)
_STALE = object()  # the preferred pipeline must be worked out again


class _Sweep:
    """`segment_at` for instants asked in increasing order, from facts kept up to date along the way.

    The purchases counting (per pipeline, and their instants for the latest), those in the 365-day
    window (how many, and their CNY amount) and the open deals change only at steps (a purchase made,
    withdrawn, or leaving the window; a deal opening or closing), each applied once, so the whole
    sweep is linear after sorting the steps.
    """

    def __init__(self, purchases: Sequence[Purchase], open_deals: Sequence[OpenDeal]) -> None:
        self._purchases = purchases
        steps: list[tuple[datetime, int, int]] = []
        for n, p in enumerate(purchases):
            stops = p.withdrawn_at
            if stops is not None and stops <= p.at:
                continue  # withdrawn the instant it was made: it never counts
            leaves = p.at + WINDOW + _JUST_AFTER
            steps += [(p.at, _COUNTS, n), (p.at, _ENTERS_WINDOW, n),
                      (leaves if stops is None else min(leaves, stops), _LEAVES_WINDOW, n)]
            if stops is not None:
                steps.append((stops, _STOPS_COUNTING, n))
        for d in open_deals:
            if d.end is None or d.end > d.start:
                steps.append((d.start, _OPENS, 0))
                if d.end is not None:
                    steps.append((d.end, _CLOSES, 0))
        steps.sort()
        self._steps, self._next = steps, 0
        self._pipelines: Counter[str] = Counter()
        self._made: Counter[datetime] = Counter()  # instants of the counting purchases
        # They start counting in time order, so the latest is the last pushed that still counts; those
        # withdrawn since are dropped when they come to the top (each is pushed and dropped once).
        self._latest: list[datetime] = []
        self._in_window, self._window_cny, self._cny = 0, 0, Decimal(0)
        self._unconverted: Counter[str] = Counter()  # currency → amount in the window without a rate
        self._open = 0
        self._preferred: str | None | object = _STALE

    def segment_at(self, instant: datetime) -> Segment:
        """The segment at `instant`, no earlier than the instant asked before."""
        steps = self._steps
        while self._next < len(steps) and steps[self._next][0] <= instant:
            _, step, n = steps[self._next]
            self._apply(step, n)
            self._next += 1
        last = self._last_purchase()
        return Segment(
            recency=recency_score(None if last is None else instant - last),
            frequency=frequency_score(self._in_window),
            monetary=monetary_score(self._cny),
            monetary_amount=self._cny,
            open_deals=self._open,
            last_purchase_at=last,
            preferred_pipeline=self._preferred_pipeline(),
            unconverted=_by_currency(self._unconverted),
        )

    def next_change(self, instant: datetime) -> datetime | None:
        """The first instant after `instant` (the last one asked) where the segment may change: the next
        step, or the latest purchase passing an age limit before it; None: it never changes again."""
        upcoming = self._steps[self._next][0] if self._next < len(self._steps) else None
        last = self._last_purchase()
        if last is not None:
            ageing = next((last + limit for limit in _RECENCY_CHANGES if last + limit > instant), None)
            if ageing is not None and (upcoming is None or ageing < upcoming):
                return ageing
        return upcoming

    def _apply(self, step: int, n: int) -> None:
        if step in (_OPENS, _CLOSES):
            self._open += 1 if step == _OPENS else -1
            return
        purchase = self._purchases[n]
        if step in (_COUNTS, _STOPS_COUNTING):
            change = 1 if step == _COUNTS else -1
            self._pipelines[purchase.pipeline] += change
            self._preferred = _STALE
            self._made[purchase.at] += change
            if change == 1:
                self._latest.append(purchase.at)
        else:
            change = 1 if step == _ENTERS_WINDOW else -1
            self._in_window += change
            amount = purchase.monetary_amount
            if amount is not None:
                self._window_cny += change
                # exact: Decimal adds and subtracts cents without rounding (28 digits)
                self._cny = self._cny + amount if change == 1 else self._cny - amount
                if self._window_cny == 0:
                    self._cny = Decimal(0)  # as `segment_at` sums an empty window
            else:
                self._unconverted[purchase.currency] += purchase.amount if change == 1 else -purchase.amount

    def _preferred_pipeline(self) -> str | None:
        if self._preferred is _STALE:
            self._preferred = most_counted(self._pipelines)
        return self._preferred  # type: ignore[return-value]

    def _last_purchase(self) -> datetime | None:
        while self._latest and self._made[self._latest[-1]] == 0:
            self._latest.pop()
        return self._latest[-1] if self._latest else None

