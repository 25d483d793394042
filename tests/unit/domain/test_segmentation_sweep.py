"""The segment timeline's sweep gives exactly what evaluating `segment_at` at every change instant gives.

`segment_timeline` keeps the facts of `segment_at` up to date while sweeping through time (O(m log m));
the reference below is the definition, evaluated from scratch at each instant (O(m²)).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.segmentation import OpenDeal, Purchase, SegmentInterval, merged_timeline, segment_at, segment_timeline
from tests.unit.domain.test_segmentation import US, bought, day


def reference_timeline(start: datetime, end: datetime | None, purchases: list[Purchase],
                       open_deals: list[OpenDeal]) -> list[SegmentInterval]:
    """The timeline by definition: `segment_at` at every instant where it may change, merged."""
    changes = {start, *(i for p in purchases for i in p.changes()),
               *(i for d in open_deals for i in (d.start, d.end) if i is not None)}
    return merged_timeline(((instant, segment_at(instant, purchases, open_deals))
                            for instant in sorted(changes) if instant >= start and (end is None or instant < end)), end)


# Days on a coarse grid (so purchases often share an instant or sit exactly on another's age limit)
# or anywhere, to the microsecond.
days = st.one_of(st.integers(0, 800).map(float), st.floats(0, 800, allow_nan=False))
purchases = st.builds(
    lambda at, amount, currency, pipeline, withdrawn, rate: Purchase(
        day(at), Decimal(amount), currency, pipeline, None if withdrawn is None else day(at) + withdrawn,
        None if rate is None or currency == "CNY" else Decimal(amount) * rate),
    days, st.sampled_from(["0.01", "100.00", "60000.00", "250000", "1000000.00"]),
    st.sampled_from(["CNY", "CNY", "USD", "BRL"]), st.sampled_from(["renewals", "sales", "service"]),
    st.none() | st.sampled_from([timedelta(0), timedelta(days=30), timedelta(days=365), timedelta(days=365) + US,
                                 timedelta(days=7, hours=3)]),
    st.none() | st.sampled_from([Decimal("7.1"), Decimal("1.25")]))  # None: no rate into CNY when it was made
open_deals = st.builds(lambda start, length: OpenDeal(day(start), None if length is None else day(start + length)),
                       days, st.none() | st.integers(0, 120).map(float))


@settings(max_examples=300, deadline=None)
@given(st.lists(purchases, max_size=14), st.lists(open_deals, max_size=5),
       st.sampled_from([-5.0, 0.0, 12.5]), st.none() | days)
def test_the_sweep_gives_the_timeline_by_definition(bought_: list[Purchase], deals: list[OpenDeal],
                                                    start: float, end: float | None) -> None:
    first, last = day(start), None if end is None or end < start else day(end)

    timeline = segment_timeline(first, last, bought_, deals)

    assert timeline == reference_timeline(first, last, bought_, deals)
    for n, interval in enumerate(timeline):  # resumed after any interval, the rest is the same
        if interval.valid_to is not None:
            assert segment_timeline(first, last, bought_, deals, after=interval) == timeline[n:]


def test_hundreds_of_purchases_in_any_order_give_the_timeline_by_definition() -> None:
    many = [bought((n * 37) % 400 * 1.5, str(1000 * (n % 7 + 1)), pipeline=("sales", "renewals")[n % 3 == 0],
                   withdrawn=None if n % 5 else (n * 37) % 400 * 1.5 + n % 90) for n in range(300)]
    deals = [OpenDeal(day(n * 2.0), day(n * 2.0 + n % 40)) for n in range(100)]

    timeline = segment_timeline(day(-1), None, many, deals)

    assert timeline == reference_timeline(day(-1), None, many, deals)
    assert timeline == segment_timeline(day(-1), None, many[::-1], deals[::-1])
