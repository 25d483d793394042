"""A/B comparisons: the tests match the libraries and textbook values on known cases, the Bayesian
probability matches sampling, and no winner is called before the data allow it."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings, strategies as st

from domain.experiments import (CONTROL_WINS, NO_DIFFERENCE, NOT_ENOUGH_DATA, VARIANT_WINS, Arm, chi_square_p_value,
                                compare, compare_all, needed_per_arm, probability_to_beat)


def test_a_known_case_by_hand_20_against_25_percent_of_1000() -> None:
    found = compare(Arm("A", 1000, 200), Arm("B", 1000, 250))
    pooled = 450 / 2000
    z = 0.05 / math.sqrt(pooled * (1 - pooled) * 2 / 1000)  # 2.677
    assert found.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)  # 0.00742
    assert found.difference == pytest.approx(0.05)
    # Newcombe's hybrid score interval from the two Wilson intervals, by hand: (0.01340, 0.08645)
    assert found.interval == pytest.approx((0.013396, 0.086449), abs=2e-6)
    assert chi_square_p_value([Arm("A", 1000, 200), Arm("B", 1000, 250)]) == pytest.approx(found.p_value, rel=1e-9)
    assert found.needed_per_arm == 1092  # 2 ((1.95996 + 0.84162) / h)², h = 2 asin √.25 − 2 asin √.2 = 0.1199
    assert found.probability_to_beat == pytest.approx(0.9963, abs=5e-4)
    assert (found.verdict, found.reason) == (NOT_ENOUGH_DATA, "92 more exposures per variant are needed (1,092 each)")
    assert compare(Arm("A", 1100, 220), Arm("B", 1100, 275)).verdict == VARIANT_WINS


def test_the_exact_probability_to_beat_matches_sampling_the_posteriors() -> None:
    draw = random.Random(7)
    control, variant = Arm("A", 120, 14), Arm("B", 110, 19)
    hits = sum(draw.betavariate(20, 92) > draw.betavariate(15, 107) for _ in range(200_000))
    assert probability_to_beat(control, variant) == pytest.approx(hits / 200_000, abs=0.004)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 60), st.integers(0, 60), st.integers(0, 60), st.integers(0, 60))
def test_the_probability_to_beat_is_a_probability_and_symmetric(c1: int, f1: int, c2: int, f2: int) -> None:
    a, b = Arm("A", c1 + f1, c1), Arm("B", c2 + f2, c2)
    forward, backward = probability_to_beat(a, b), probability_to_beat(b, a)
    assert 0 <= forward <= 1 and forward + backward == pytest.approx(1, abs=1e-9)  # ties have probability 0


def test_no_winner_is_called_before_each_arm_reached_its_sample_size() -> None:
    early = compare(Arm("A", 300, 60), Arm("B", 300, 84))  # p ≈ 0.02 after 300 each: significant, too early
    assert early.p_value < 0.05 and early.verdict == NOT_ENOUGH_DATA and "more exposures" in early.reason
    assert compare(Arm("A", 40, 2), Arm("B", 40, 9)).verdict == NOT_ENOUGH_DATA  # too few conversions to test
    assert compare(Arm("A", 0, 0), Arm("B", 10, 1)).verdict == NOT_ENOUGH_DATA
    assert compare(Arm("A", 5000, 1000), Arm("B", 5000, 1010), min_effect=0.03).verdict == NO_DIFFERENCE
    assert compare(Arm("A", 2000, 500), Arm("B", 2000, 400)).verdict == CONTROL_WINS


def test_sample_sizes_match_the_power_analysis_and_bad_counts_are_refused() -> None:
    assert needed_per_arm(0.1, 0.02) == 3835  # 10 % → 12 %, alpha 0.05, power 0.8: 2 (2.80158 / 0.06398)²
    assert needed_per_arm(0.1, 0) is None and needed_per_arm(0.95, 0.1) is None
    with pytest.raises(ValueError, match="between 0 and its exposures"):
        Arm("文案B", 10, 11)


def test_near_equal_rates_need_no_count_rather_than_raising() -> None:
    """statsmodels' solver gives NaN below an effect size of ~1e-9 (math.ceil(nan) raised: a 422 report)."""
    assert needed_per_arm(0.5, 1e-12) is None
    result = compare(Arm("A", 1_000_003, 500_000), Arm("B", 1_000_001, 499_999))
    assert result.to_dict()["needed_per_arm"] is None


def test_with_several_variants_a_winner_is_decided_on_holm_adjusted_p_values() -> None:
    """Three variants against one control, 10 % against 10.65 % of 20,000 each (minimum effect 1 point: 14,745 per
    arm needed, reached): B's raw p = 0.027 calls it a winner alone, not at a family-wise 5 % (Holm multiplies the
    smallest of three p-values by 3, …); the adjusted p-values are statsmodels' own."""
    from statsmodels.stats.multitest import multipletests

    control = Arm("A", 20_000, 2_000)
    variants = [Arm("B", 20_000, 2_135), Arm("C", 20_000, 2_010), Arm("D", 20_000, 1_990)]
    alone = compare(control, variants[0], min_effect=0.01)
    assert alone.p_value < 0.05 and alone.verdict == VARIANT_WINS
    together = compare_all(control, variants, min_effect=0.01)
    expected = multipletests([compare(control, v).p_value for v in variants], method="holm")[1]
    assert [c.p_adjusted for c in together] == pytest.approx(list(expected))
    assert together[0].p_value == alone.p_value and together[0].p_adjusted > 0.05
    assert together[0].verdict == NO_DIFFERENCE and "Holm-adjusted over 3 variants" in together[0].reason
    assert compare_all(control, variants[:1], min_effect=0.01) == [alone]  # one comparison: nothing to adjust


def test_the_holm_family_is_the_variants_with_a_p_value() -> None:
    """Which variants Holm adjusts over: those with a p-value — each arm with at least `MIN_EACH` conversions and
    as many non-conversions — including one still short of its sample size ("not enough data", yet tested); a
    variant with too few exposures or conversions has no p-value, no adjusted one, and does not enlarge the
    family (the README's A/B section says so)."""
    from statsmodels.stats.multitest import multipletests

    control = Arm("A", 20_000, 2_000)
    tested, short = Arm("B", 20_000, 2_135), Arm("D", 2_000, 230)  # D: a p-value, far from its sample size
    untested = [Arm("C", 30, 2), Arm("E", 0, 0)]  # 2 conversions; no exposures yet

    together = compare_all(control, [tested, *untested, short], min_effect=0.01)
    b, c, e, d = together

    assert short.fit and d.p_value is not None and d.verdict == NOT_ENOUGH_DATA
    assert (c.p_value, c.p_adjusted, e.p_value, e.p_adjusted) == (None, None, None, None)
    expected = multipletests([b.p_value, d.p_value], method="holm")[1]  # a family of two, not four
    assert [b.p_adjusted, d.p_adjusted] == pytest.approx(list(expected))
    assert "Holm-adjusted over 2 variants" in b.reason
    assert [b, d] == compare_all(control, [tested, short], min_effect=0.01)  # the untested change nothing
    alone = compare_all(control, [tested, *untested], min_effect=0.01)[0]  # B alone with a p-value: unadjusted
    assert alone == compare(control, tested, min_effect=0.01) and alone.verdict == VARIANT_WINS
