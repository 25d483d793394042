"""The history-based forecast's methods on known series: the numbers are statsmodels' own (the same model
called directly gives the same forecast and band), a short history is "not enough history" with its counts, and
the errors are the textbook MAE, MAPE, bias and coverage."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.statespace.sarimax import SARIMAX

from domain.forecast_methods import (LOST_BY_T, MIN_CLOSED, NAIVE, OPEN_AT_T, PIPELINE_CONVERSION, SEASONAL, TREND,
                                     WON_BY_T, NewBusiness, OpenGroup, Point, StageHistory, StageOutlook,
                                     conversion_forecast,
                                     errors, ets_forecast, naive_forecast, require_level, require_methods,
                                     require_periods)

# 36 months with a trend, a December peak and a February trough, and some noise (fixed): cents.
SEASON = np.array([1.0, 0.6, 0.9, 1.0, 1.1, 1.0, 0.9, 0.9, 1.0, 1.1, 1.2, 1.6])
NOISE = np.random.default_rng(15).normal(0, 0.03, 36)
SERIES = [float(round(1e6 * (1 + 0.01 * k) * (SEASON[k % 12] + NOISE[k]))) for k in range(36)]


def direct_ets(values: list[float], season: int | None, horizon: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    kwargs = {} if season is None else {"seasonal": "add", "seasonal_periods": season}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = ETSModel(pd.Series(values), error="add", trend="add", damped_trend=True,
                          initialization_method="heuristic", **kwargs).fit(disp=False)
    found = fitted.get_prediction(start=len(values), end=len(values) + horizon - 1)
    return found.predicted_mean.to_numpy(), found.pred_int(alpha=alpha).to_numpy()


@pytest.mark.parametrize("season", [None, 12])
def test_the_ets_methods_are_statsmodels_fit_and_interval(season: int | None) -> None:
    found = ets_forecast(SERIES, 4, 80, season)
    mean, bounds = direct_ets(SERIES, season, 4, 0.2)

    assert found.method == (TREND if season is None else SEASONAL) and found.available
    assert [p.forecast for p in found.points] == [max(0, round(m)) for m in mean]
    assert [(p.lower, p.upper) for p in found.points] == [(max(0, round(lo)), max(0, round(hi))) for lo, hi in bounds]
    assert all(p.lower < p.forecast < p.upper for p in found.points)  # a band from the model, not ±constant
    assert len({p.upper - p.lower for p in found.points}) > 1


def test_the_seasonal_method_sees_the_december_peak_and_the_february_trough() -> None:
    found = ets_forecast(SERIES, 12, 80, 12).points  # January … December of the fourth year

    assert max(range(12), key=lambda k: found[k].forecast) == 11
    assert min(range(12), key=lambda k: found[k].forecast) == 1


def test_the_naive_method_is_last_year_s_period_as_a_seasonal_random_walk() -> None:
    found = naive_forecast(SERIES, 3, 90, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = SARIMAX(pd.Series(SERIES), order=(0, 0, 0), seasonal_order=(0, 1, 0, 12)).fit(disp=False).get_forecast(3)

    assert [p.forecast for p in found.points] == [round(v) for v in SERIES[24:27]]
    assert [(p.lower, p.upper) for p in found.points] == [(max(0, round(lo)), round(hi))
                                                          for lo, hi in direct.conf_int(alpha=0.1).to_numpy()]
    assert "a year before" in (found.basis or "")


def test_the_naive_method_with_less_than_a_year_repeats_the_last_period() -> None:
    found = naive_forecast(SERIES[:8], 2, 80, 12)

    assert [p.forecast for p in found.points] == [round(SERIES[7])] * 2 and "last period" in (found.basis or "")
    assert found.points[1].upper - found.points[1].lower > found.points[0].upper - found.points[0].lower  # widens


@pytest.mark.parametrize(("method", "values", "reason"), [
    (lambda v: ets_forecast(v, 3, 80, 12), SERIES[:23], "not enough history: 23 periods, need 24"),
    (lambda v: ets_forecast(v, 3, 80, 4), SERIES[:13], "not enough history: 13 periods, need 14"),
    (lambda v: ets_forecast(v, 3, 80, None), SERIES[:9], "not enough history: 9 periods, need 10"),
    (lambda v: naive_forecast(v, 3, 80, 12), SERIES[:4], "not enough history: 4 periods, need 5"),
    (lambda v: naive_forecast(v, 3, 80, 12), [], "not enough history: 0 periods, need 5"),
])
def test_too_little_history_says_so_instead_of_a_number(method, values: list[float], reason: str) -> None:  # type: ignore[no-untyped-def]
    found = method(values)

    assert not found.available and found.points == () and found.reason == reason


def history(won_days: int = 10, lost_days: int = 5, won: int = 60, lost: int = 40, open_days: int = 2,
            still_open: int = 0) -> StageHistory:
    return StageHistory([won_days, lost_days, open_days], [WON_BY_T, LOST_BY_T, OPEN_AT_T], [won, lost, still_open])


def test_a_stage_s_chances_are_the_cumulative_incidence_conditional_on_the_deal_s_age() -> None:
    outlook = StageOutlook(history())

    assert outlook.win_chances(0, [(0, 8), (8, 30), (30, 60)]) == pytest.approx([0, 0.6, 0])
    assert outlook.win_chances(7, [(0, 8), (8, 30)]) == pytest.approx([0, 1.0])  # past the day they are lost
    assert outlook.win_chances(11, [(11, 30)]) is None  # older than any deal before it


def test_deals_still_open_are_censored_not_counted_as_lost() -> None:
    with_open = StageOutlook(history(still_open=50, open_days=1))  # open after 1 day: no outcome yet

    assert with_open.win_chances(0, [(0, 30)]) == pytest.approx([0.6])


def test_the_conversion_forecast_sums_amount_times_chance_with_a_binomial_band() -> None:
    stages = {("sales", "proposal"): history()}
    group = OpenGroup(("sales", "proposal"), 4, 4e6, 4e12, 0, ((0, 8), (8, 38)))
    found = conversion_forecast(stages, [group], 2, 80)

    assert [p.forecast for p in found.points] == [0, round(0.6 * 4e6)]
    half = 1.2815515655446004 * math.sqrt(4e12 * 0.6 * 0.4)
    assert found.points[1].lower == round(0.6 * 4e6 - half) and found.points[1].upper == round(0.6 * 4e6 + half)


def test_the_conversion_forecast_leaves_out_stages_without_enough_closed_deals() -> None:
    stages = {("sales", "proposal"): history(), ("sales", "lead"): history(won=5, lost=5)}
    groups = [OpenGroup(("sales", "lead"), 3, 3e6, 3e12, 0, ((0, 30),))]
    found = conversion_forecast(stages, groups, 1, 80)

    assert found.points == (Point(0),) and "3 deals left out" in (found.basis or "")  # nothing left: no band
    assert conversion_forecast({("sales", "lead"): history(won=5, lost=5)}, groups, 1, 80).reason == \
        f"not enough history: 10 closed stage entries, need {MIN_CLOSED}"


FLAT = "no band for 3 of 3 periods: the history it rests on did not vary"


@pytest.mark.parametrize("forecast", [
    lambda: ets_forecast([250_000.0] * 12, 3, 80, None),
    lambda: naive_forecast([250_000.0] * 6, 3, 80, 12),  # the last period
    lambda: naive_forecast([250_000.0] * 16, 3, 80, 12),  # the same period a year before
    lambda: conversion_forecast({("sales", "proposal"): history()}, [], 3, 80,
                                NewBusiness(((250_000.0,) * 3,) * 3)),  # no open deal, the same new business
], ids=["trend", "naive last period", "naive a year before", "pipeline_conversion"])
def test_a_flat_history_gives_no_band_rather_than_one_of_zero_width(forecast) -> None:  # type: ignore[no-untyped-def]
    """Every period alike is no evidence that the next one will be exactly that: the band of zero width the models
    give (their measured spread is 0) is left out and `basis` says why, and the backtest's coverage skips it."""
    found = forecast()

    assert found.available and [p.forecast for p in found.points] == [250_000] * 3
    assert all(p.lower is None and p.upper is None for p in found.points) and FLAT in (found.basis or "")
    assert errors([(point, 250_000) for point in found.points]).coverage is None


def test_a_history_that_varies_keeps_its_band_and_says_nothing_of_it() -> None:
    found = ets_forecast([250_000.0, 260_000.0] * 6, 3, 80, None)

    assert all(p.lower is not None and p.upper is not None and p.lower < p.upper for p in found.points)
    assert "no band" not in (found.basis or "")


def test_backtest_errors_are_mae_mape_bias_and_coverage() -> None:
    found = errors([(Point(110, 100, 120), 100), (Point(80, 70, 90), 100), (Point(10), 0)])

    assert (found.compared, found.mae, found.bias) == (3, round((10 + 20 + 10) / 3), round((10 - 20 + 10) / 3))
    assert found.mape == pytest.approx(15.0)  # over the two non-zero actuals
    assert found.coverage == pytest.approx(50.0)  # of the two with a band
    assert errors([(Point(5), 0)]).mape is None and errors([]).to_dict()["mae_cents"] is None


@pytest.mark.parametrize(("check", "value", "message"), [
    (require_methods, ["arima"], "unknown forecast method 'arima'"),
    (require_periods, 0, "from 1 to 24"), (require_periods, 25, "from 1 to 24"),
    (require_level, 100, "from 50 to 99"), (require_level, 10, "from 50 to 99"),
])
def test_bad_choices_are_refused_with_a_sentence(check, value: object, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        check(value)


def test_methods_come_in_their_order_and_default_to_all() -> None:
    assert require_methods([NAIVE, PIPELINE_CONVERSION]) == (PIPELINE_CONVERSION, NAIVE)
    assert len(require_methods(None)) == 5


def test_a_history_the_model_cannot_fit_is_said_not_raised() -> None:
    found = ets_forecast([1e6] * 29 + [math.nan], 3, 80, None)  # no series of sums holds NaN; a model may give one

    assert not found.available and found.reason == \
        "the model could not be fitted to this history (the model gave no finite forecast)"
