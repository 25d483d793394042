"""Forecast standing: a deal's own probability and category, else its stage's defaults (set, else by position);
won is closed at 100 %, lost omitted at 0 %; the money rules of weighting and attainment."""

from __future__ import annotations

import pytest

from domain.errors import DomainError
from domain.forecasting import (StageForecast, attainment_percent, positional_default, require_category,
                                require_probability, stage_default, standing, weighted_cents)


def test_positional_defaults_rise_with_the_stage_and_end_in_commit() -> None:
    defaults = [positional_default(i, 6) for i in range(6)]
    assert [d.probability for d in defaults] == [14, 29, 43, 57, 71, 86]
    assert [d.category for d in defaults] == ["pipeline"] * 4 + ["best_case", "commit"]


def test_a_deal_stands_by_its_own_values_else_its_stages() -> None:
    stages, defined = ["a", "b"], {"b": StageForecast(60, "best_case")}
    assert stage_default(stages, defined, "a") == StageForecast(33, "best_case")
    assert stage_default(stages, defined, "b") == StageForecast(60, "best_case")
    assert stage_default(stages, defined, "gone") is None
    assert standing("open", StageForecast(60, "best_case"), 80, None) == StageForecast(80, "best_case")
    assert standing("open", StageForecast(60, "best_case"), None, "commit") == StageForecast(60, "commit")
    assert standing("won", None, 10, "omitted") == StageForecast(100, "closed")
    assert standing("lost", StageForecast(60, "commit"), 90, "commit") == StageForecast(0, "omitted")
    assert standing("open", None, None, None) == StageForecast(0, "pipeline")


@pytest.mark.parametrize("value", [-1, 101, True, "50", 50.0])
def test_a_probability_is_a_whole_percent(value: object) -> None:
    with pytest.raises(DomainError, match="whole number of percent"):
        require_probability(value)


def test_closed_is_only_for_won_deals() -> None:
    with pytest.raises(DomainError, match="only for won deals"):
        require_category("closed")
    with pytest.raises(DomainError, match="expected one of"):
        require_category("upside")
    assert require_category("omitted") == "omitted"


def test_weighting_and_attainment_round_half_even() -> None:
    assert weighted_cents(150, 50) == 75 and weighted_cents(101, 50) == 50 and weighted_cents(103, 50) == 52
    assert weighted_cents(12345, 0) == 0 and weighted_cents(12345, 100) == 12345
    assert attainment_percent(1, 3) == "33.3" and attainment_percent(5, 0) is None and attainment_percent(5, None) is None
