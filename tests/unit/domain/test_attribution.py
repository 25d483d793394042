"""Multi-touch attribution: every model's credits of a deal sum to its value in whole cents; known cases of
each model; touches after the win credit nothing."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from domain.attribution import MODELS, Milestones, credit, credit_all
from domain.marketing import Touch

DAY = 86_400_000_000
JOURNEY = [Touch(0, "展会"), Touch(2 * DAY, "邮件"), Touch(5 * DAY, "网络研讨会"), Touch(9 * DAY, "电话"),
           Touch(10 * DAY, "邮件")]
WON = 10 * DAY


def test_each_model_on_one_journey_of_five_touches() -> None:
    assert credit(JOURNEY, WON, 10_000, "first_touch") == {"展会": 10_000}
    assert credit(JOURNEY, WON, 10_000, "last_touch") == {"邮件": 10_000}
    assert credit(JOURNEY, WON, 10_000, "linear") == {"展会": 2000, "邮件": 4000, "网络研讨会": 2000, "电话": 2000}
    # 40 / 40 to the first and last, 20 split over the three between
    assert credit(JOURNEY, WON, 9_000, "u_shaped") == {"展会": 3600, "邮件": 600 + 3600, "网络研讨会": 600, "电话": 600}
    # 30 each: first, the last touch by the lead's creation (day 2) and by the deal's opening (day 5); 10 over 2
    w = credit(JOURNEY, WON, 10_000, "w_shaped", Milestones(lead_created_at=3 * DAY, deal_opened_at=6 * DAY))
    assert w == {"展会": 3000, "邮件": 3000 + 500, "网络研讨会": 3000, "电话": 500}
    # half-life 7 days: weights 2^(-10/7), 2^(-8/7), 2^(-5/7), 2^(-1/7), 1
    decay = credit(JOURNEY, WON, 1_000_000, "time_decay")
    weights = [2 ** (-10 / 7), 2 ** (-8 / 7), 2 ** (-5 / 7), 2 ** (-1 / 7), 1]
    assert decay["电话"] == pytest.approx(1_000_000 * weights[3] / sum(weights), abs=1)
    assert credit(JOURNEY, WON, 1_000_000, "time_decay", half_life_days=1)["展会"] < decay["展会"]


def test_touches_after_the_win_credit_nothing_and_no_touch_no_credit() -> None:
    assert credit(JOURNEY, 3 * DAY, 100, "last_touch") == {"邮件": 100}
    assert credit(JOURNEY, -1, 100, "linear") == {}
    with pytest.raises(ValueError, match="must be one of"):
        credit(JOURNEY, WON, 100, "position_based")


def test_u_and_w_shaped_with_fewer_touches_than_milestones() -> None:
    assert credit(JOURNEY[:1], WON, 100, "u_shaped") == {"展会": 100}
    assert credit(JOURNEY[:2], WON, 101, "u_shaped") == {"展会": 51, "邮件": 50}  # the odd cent to the earlier
    assert credit(JOURNEY[:2], WON, 100, "w_shaped", Milestones(0, 0)) == {"展会": 90, "邮件": 10}


touches = st.lists(st.builds(Touch, st.integers(0, 30 * DAY), st.sampled_from(["A", "B", "C", "活动D"])), max_size=12)


@given(touches, st.integers(0, 10**12), st.sampled_from(MODELS), st.integers(0, 30 * DAY), st.integers(0, 30 * DAY),
       st.floats(0.1, 60))
def test_every_model_credits_each_deal_its_value_exactly(found: list[Touch], value: int, model: str, lead: int,
                                                         opened: int, half_life: float) -> None:
    credited = credit(found, 30 * DAY, value, model, Milestones(lead, opened), half_life)
    assert sum(credited.values()) == (value if found else 0)
    assert all(cents >= 0 for cents in credited.values())
    assert credit(list(reversed(found)), 30 * DAY, value, model, Milestones(lead, opened), half_life) == credited


MONEY_CENTS = 10**17  # domain.money.LIMIT (10**15) in cents: floats shared these wrongly above 2**53


@given(touches, st.integers(0, MONEY_CENTS), st.sampled_from(MODELS), st.integers(0, 30 * DAY),
       st.integers(0, 30 * DAY), st.floats(0.1, 60))
def test_credits_are_exact_at_every_amount_money_allows(found: list[Touch], value: int, model: str, lead: int,
                                                        opened: int, half_life: float) -> None:
    credited = credit(found, 30 * DAY, value, model, Milestones(lead, opened), half_life)
    assert sum(credited.values()) == (value if found else 0)
    assert all(cents >= 0 for cents in credited.values())
    if model in ("first_touch", "last_touch") and found and value:
        assert len(credited) == 1  # a touch of weight 0 is never credited a remainder cent


def test_credits_keyed_by_a_campaign_and_variant_pair() -> None:
    pairs = [Touch(0, ("c1", "A\x1fB")), Touch(DAY, ("c1", ""))]
    assert credit(pairs, DAY, 101, "linear") == {("c1", "A\x1fB"): 51, ("c1", ""): 50}


def test_credits_over_many_deals_add_up() -> None:
    deals = [(JOURNEY, WON, 10_000, Milestones()), (JOURNEY[:2], WON, 500, Milestones())]
    assert credit_all(deals, "first_touch") == {"展会": 10_500}


def test_last_touch_ties_go_to_the_smaller_campaign_id_as_in_the_campaigns_report() -> None:
    tied = [Touch(DAY, "B"), Touch(DAY, "A"), Touch(0, "C")]
    assert credit(tied, WON, 100, "last_touch") == {"A": 100}
    assert credit(tied, WON, 100, "first_touch") == {"C": 100}


def test_time_decay_with_a_half_life_short_beside_the_gaps_still_credits_the_whole_value() -> None:
    """40 days before the win at a half-life of 0.01 days, 0.5 ** 4000 is 0.0 in floating point: weighed from
    the latest touch, that one keeps the whole value rather than dividing by zero."""
    old = [Touch(0, "A"), Touch(DAY, "B")]
    assert credit(old, 40 * DAY, 100, "time_decay", half_life_days=0.01) == {"B": 100}
    assert credit(old, 40 * DAY, 100, "time_decay", half_life_days=1) == {"A": 33, "B": 67}
