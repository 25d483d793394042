"""Marketing rules: ROI, CAC, CLV, conversion ratios and attribution credit, with their edge cases
(no cost, no customer, nobody entering a step, no touch, ties) — each answered by None or by a rule."""

from __future__ import annotations

import pytest

from domain.marketing import (AttributionCredit, Credited, Touch, ValueSummary, Win, cents_each,
                              credited_campaigns, customer_acquisition_cost, deal_campaign, first_and_last_touch,
                              first_wins, lifetime_values, roi, value_summary)

W, S, A = "1-w", "2-s", "3-a"  # campaign ids: they order W < S < A


def win(deal: str, customer: str, at: int, revenue: int, campaign: str | None = None) -> Win:
    return Win(deal, customer, campaign, at, revenue)


@pytest.mark.parametrize(("total", "count", "each"), [
    (7, 2, 4),  # 3.5 → 4: half to even
    (5, 2, 2),  # 2.5 → 2: half to even, not up
    (10, 3, 3),
    (0, 5, 0),
    (100, 0, None),  # nothing to divide by
])
def test_cents_each_rounds_half_to_even_and_is_none_for_nobody(total: int, count: int, each: int | None) -> None:
    assert cents_each(total, count) == each


@pytest.mark.parametrize(("revenue", "cost", "expected"), [
    (190000, 400000, -0.525),  # 1,900 won on 4,000 spent
    (400000, 400000, 0.0),  # broke even
    (0, 100, -1.0),  # all money lost
    (300000, 100000, 2.0),
    (0, 0, None),  # zero cost: no return to speak of
    (50000, 0, None),  # revenue without cost is still no ratio, not infinity
])
def test_roi_is_won_revenue_minus_cost_over_cost(revenue: int, cost: int, expected: float | None) -> None:
    assert roi(revenue, cost) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(("cost", "customers", "cac"), [
    (400000, 1, 400000),
    (200000, 2, 100000),
    (100001, 2, 50000),  # 500.005 → 500.00: half to even
    (0, 3, 0),  # zero cost: customers came free
    (200000, 0, None),  # zero customers: no price per head yet
    (0, 0, None),
])
def test_customer_acquisition_cost_is_cost_per_new_customer(cost: int, customers: int, cac: int | None) -> None:
    assert customer_acquisition_cost(cost, customers) == cac


def test_a_deal_belongs_to_its_own_campaign_else_to_its_leads() -> None:
    assert deal_campaign(S, W) == S
    assert deal_campaign(None, W) == W
    assert deal_campaign(None, None) is None


def test_a_customer_is_acquired_by_their_earliest_win_ties_to_the_smaller_deal_id() -> None:
    d1, d2, d3 = win("d1", "c1", 10, 1000, W), win("d2", "c1", 5, 500, S), win("d3", "c2", 7, 300, A)
    tie_b, tie_a = win("b", "c3", 4, 1, W), win("a", "c3", 4, 2, S)

    assert first_wins([d1, d2, d3, tie_b, tie_a]) == {"c1": d2, "c2": d3, "c3": tie_a}
    assert first_wins([tie_a, tie_b]) == first_wins([tie_b, tie_a])  # the order read does not matter
    assert first_wins([]) == {}


def test_lifetime_value_is_the_sum_of_a_customers_wins() -> None:
    wins = [win("d1", "c1", 10, 120000), win("d4", "c1", 16, 200000), win("d2", "c2", 12, 50000)]

    assert lifetime_values(wins) == {"c1": 320000, "c2": 50000}
    assert lifetime_values([]) == {}  # no win, no customer value (not a value of 0)


@pytest.mark.parametrize(("values", "summary"), [
    ([30000, 120000], ValueSummary(2, 150000, 75000)),
    ([1, 2], ValueSummary(2, 3, 2)),  # 1.5 → 2
    ([1, 4], ValueSummary(2, 5, 2)),  # 2.5 → 2
    ([0], ValueSummary(1, 0, 0)),  # a buyer of a free deal still counts
    ([], ValueSummary(0, 0, None)),  # no buyers: no average
])
def test_value_summary_averages_over_buyers(values: list[int], summary: ValueSummary) -> None:
    assert value_summary(values) == summary


def test_first_and_last_touch_ties_at_one_instant_go_to_the_smaller_campaign_id() -> None:
    touches = [Touch(5, S), Touch(2, A), Touch(2, W), Touch(9, A), Touch(9, S)]

    assert first_and_last_touch(touches) == Credited(first_touch=W, last_touch=S)
    assert first_and_last_touch(list(reversed(touches))) == Credited(W, S)
    assert first_and_last_touch([Touch(3, A)]) == Credited(A, A)
    assert first_and_last_touch([]) == Credited(None, None)


def test_only_touches_at_or_before_a_win_are_credited() -> None:
    touches = [Touch(2, W), Touch(9, S), Touch(20, A)]  # A's touch comes after the win on day 10

    assert credited_campaigns(touches, won_at=10) == Credited(W, S)
    assert credited_campaigns(touches, won_at=9) == Credited(W, S)  # a touch at the win's instant counts
    assert credited_campaigns(touches, won_at=1) == Credited(None, None)  # no touch before: no campaign
    assert credited_campaigns([], won_at=10) == Credited(None, None)


def test_attribution_credit_counts_deals_and_revenue_per_model() -> None:
    d1, d3 = win("d1", "c1", 10, 120000), win("d3", "c3", 14, 30000)

    credit = AttributionCredit().plus_first_touch(d1).plus_first_touch(d3).plus_last_touch(d3)

    assert credit == AttributionCredit(first_touch_deals=2, first_touch_revenue_cents=150000,
                                       last_touch_deals=1, last_touch_revenue_cents=30000)
    assert AttributionCredit() == AttributionCredit(0, 0, 0, 0)  # a campaign without credit: all zero


def test_attribution_credit_of_a_free_deal_counts_the_deal_and_no_revenue() -> None:
    assert AttributionCredit().plus_last_touch(win("d9", "c9", 1, 0)) == AttributionCredit(0, 0, 1, 0)
