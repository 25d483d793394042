"""Segmentation rules: fixed RFM thresholds, value tiers, and the timeline of a customer's segment."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.segmentation import (
    HIGH_VALUE,
    ORDINARY,
    POTENTIAL,
    OpenDeal,
    Purchase,
    frequency_score,
    monetary_score,
    most_frequent,
    preferred_channel,
    recency_score,
    segment_at,
    segment_timeline,
    tier_of,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
US = timedelta(microseconds=1)


def day(days: float) -> datetime:
    return T0 + timedelta(days=days)


def bought(days: float, amount: str = "100000", currency: str = "CNY", pipeline: str = "sales",
           withdrawn: float | None = None) -> Purchase:
    return Purchase(day(days), Decimal(amount), currency, pipeline, None if withdrawn is None else day(withdrawn))


@pytest.mark.parametrize(("age", "score"), [
    (None, 0), (timedelta(0), 5), (timedelta(days=30), 5), (timedelta(days=30) + US, 4), (timedelta(days=90), 4),
    (timedelta(days=180), 3), (timedelta(days=180) + US, 2), (timedelta(days=365), 2), (timedelta(days=365) + US, 1),
    (timedelta(days=3000), 1),
])
def test_recency_scores_the_age_of_the_last_purchase_with_inclusive_limits(age: timedelta | None, score: int) -> None:
    assert recency_score(age) == score


def test_frequency_is_the_number_of_purchases_capped_at_five() -> None:
    assert [frequency_score(n) for n in (0, 1, 4, 5, 9)] == [0, 1, 4, 5, 5]


@pytest.mark.parametrize(("amount", "score"), [
    ("0", 0), ("0.01", 1), ("49999.99", 1), ("50000", 2), ("199999.99", 2), ("200000", 3), ("500000", 4),
    ("999999.99", 4), ("1000000", 5), ("8000000", 5),
])
def test_monetary_scores_the_cny_amount_by_fixed_thresholds(amount: str, score: int) -> None:
    assert monetary_score(Decimal(amount)) == score


@pytest.mark.parametrize(("scores", "tier"), [
    ((4, 1, 3, 0), HIGH_VALUE), ((5, 2, 2, 0), HIGH_VALUE), ((3, 5, 5, 0), POTENTIAL), ((5, 1, 2, 0), POTENTIAL),
    ((3, 1, 2, 0), POTENTIAL), ((2, 5, 5, 0), ORDINARY), ((5, 1, 1, 0), ORDINARY), ((0, 0, 0, 1), POTENTIAL),
    ((1, 0, 0, 2), POTENTIAL), ((0, 0, 0, 0), ORDINARY),
])
def test_tiers_from_scores_and_open_deals(scores: tuple[int, int, int, int], tier: str) -> None:
    assert tier_of(*scores) == tier


def test_most_frequent_breaks_ties_alphabetically() -> None:
    assert most_frequent(["phone", "email", "visit", "email", "phone"]) == "email"
    assert most_frequent(["visit", "phone", "visit"]) == "visit"
    assert most_frequent([]) is None


def test_preferred_channel_is_the_most_touched_else_the_acquisition_channel() -> None:
    assert preferred_channel(["visit", "phone", "phone"], "web") == "phone"
    assert preferred_channel(["visit", "email"], "web") == "email"  # a tie: alphabetical
    assert preferred_channel([], "web") == "web"
    assert preferred_channel(["unknown", "unknown", "phone"], "web") == "phone"  # unknown says no preference
    assert preferred_channel(["unknown"], "web") == "web"
    assert preferred_channel([], None) is None


def test_only_purchases_of_the_last_365_days_count_for_frequency_and_monetary() -> None:
    segment = segment_at(day(400), [bought(0, "900000"), bought(100, "60000"), bought(390, "150000")], [])

    assert (segment.recency, segment.frequency, segment.monetary) == (5, 2, 3)
    assert segment.monetary_amount == Decimal("210000")
    assert segment.last_purchase_at == day(390)


def test_purchases_without_a_rate_count_for_recency_and_frequency_and_are_kept_apart_from_monetary() -> None:
    segment = segment_at(day(10), [bought(0, "900000", "USD"), bought(5, "60000")], [])

    assert (segment.recency, segment.frequency, segment.monetary, segment.monetary_amount) == (5, 2, 2, 60000)
    assert segment.unconverted == (("USD", Decimal("900000")),)


def test_purchases_in_other_currencies_count_in_monetary_at_their_converted_amount() -> None:
    usd = Purchase(day(0), Decimal("90000"), "USD", "sales", converted=Decimal("639000"))
    brl = Purchase(day(1), Decimal("10000"), "BRL", "sales", converted=Decimal("12500"))

    segment = segment_at(day(10), [usd, brl, bought(5, "60000")], [])

    assert (segment.monetary_amount, segment.monetary, segment.unconverted) == (Decimal("711500"), 4, ())


def test_a_withdrawn_purchase_no_longer_counts_from_its_withdrawal() -> None:
    purchases = [bought(0, withdrawn=20)]

    assert segment_at(day(19), purchases, []).frequency == 1
    assert (segment_at(day(20), purchases, []).recency, segment_at(day(20), purchases, []).frequency) == (0, 0)


def test_open_deals_are_counted_while_open() -> None:
    deals = [OpenDeal(day(0), day(10)), OpenDeal(day(5))]

    assert [segment_at(day(d), [], deals).open_deals for d in (-1, 0, 5, 10)] == [0, 1, 2, 1]


def test_preferred_pipeline_is_the_one_of_most_purchases() -> None:
    purchases = [bought(0, pipeline="renewals"), bought(1, pipeline="sales"), bought(2, pipeline="renewals")]

    assert segment_at(day(3), purchases, []).preferred_pipeline == "renewals"


def test_the_timeline_changes_tier_as_a_purchase_ages_without_any_event() -> None:
    timeline = segment_timeline(day(0), None, [bought(10, "250000")], [])

    assert [(i.valid_from, i.valid_to, i.segment.tier, i.segment.recency) for i in timeline] == [
        (day(0), day(10), ORDINARY, 0),
        (day(10), day(40) + US, HIGH_VALUE, 5),
        (day(40) + US, day(100) + US, HIGH_VALUE, 4),
        (day(100) + US, day(190) + US, POTENTIAL, 3),
        (day(190) + US, day(375) + US, ORDINARY, 2),
        (day(375) + US, None, ORDINARY, 1),
    ]
    assert [i.tier_since for i in timeline] == [day(0), day(10), day(10), day(100) + US, day(190) + US, day(190) + US]


def test_a_later_purchase_replaces_the_rest_of_the_timeline() -> None:
    timeline = segment_timeline(day(0), None, [bought(10, "250000"), bought(20, "10000")], [])

    assert [(i.valid_from, i.segment.tier, i.segment.recency, i.segment.frequency) for i in timeline][:4] == [
        (day(0), ORDINARY, 0, 0), (day(10), HIGH_VALUE, 5, 1), (day(20), HIGH_VALUE, 5, 2),
        (day(50) + US, HIGH_VALUE, 4, 2)]


def test_the_timeline_does_not_depend_on_the_order_of_its_inputs() -> None:
    purchases = [bought(10, "250000"), bought(20, "10000", withdrawn=50), bought(200, "70000")]
    deals = [OpenDeal(day(0), day(10)), OpenDeal(day(150), day(200))]

    timelines = {tuple(segment_timeline(day(0), None, list(p), list(d)))
                 for p in itertools.permutations(purchases) for d in itertools.permutations(deals)}

    assert len(timelines) == 1


def test_the_timeline_ends_when_the_customer_is_forgotten() -> None:
    timeline = segment_timeline(day(0), day(30), [bought(10, "250000")], [])

    assert [(i.valid_from, i.valid_to) for i in timeline] == [(day(0), day(10)), (day(10), day(30))]
