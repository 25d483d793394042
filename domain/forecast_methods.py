"""History-based sales forecasts: what will be won in each of the next periods, by several named methods, each
with an error band from its own model, or an honest "not enough history" instead of a made-up number.

Why several: no one method is right for every business, and a backtest (what each method said at a past
instant against what closed since) shows which one to trust here. The methods:

- `weighted` — the open deals' amounts × their probabilities, in the period of their expected close date (the
  forecast read model's weighted pipeline; no error model, so no band).
- `pipeline_conversion` — each open deal's chance to be won, and when, from how deals that entered its stage
  before ended: the cumulative incidence of "won" and "lost" against days since entering the stage, with the
  deals still open counted as censored (statsmodels' `CumIncidenceRight`, the Aalen–Johansen estimator), taken
  conditional on the deal's age in its stage; plus the deals not yet open at T, as after past instants like T
  (`NewBusiness`: what deals opened after each of the last `MAX_ANALOGUES` same-placed instants won in the
  same-placed period; their mean, and their spread in the band). Without the second part the method forecast
  only the pipeline and its 80 % band held none of the 1M benchmark's actuals.
- `trend` — exponential smoothing of won per period with a damped additive trend, ETS(A,Ad,N) (statsmodels'
  `ETSModel`); the band is the model's prediction interval.
- `seasonal` — the same with an additive season of a year (12 months or 4 quarters), ETS(A,Ad,A): it sees
  peaks and troughs once the history holds two whole years.
- `naive` — the baseline: the same period a year before (a seasonal random walk), or with less than a year and
  four periods of history the last period (a random walk), both as SARIMAX models so that the band is theirs.

Why a library: the fitting and the intervals are statsmodels' (imported when called: the CLI starts without
them); only the bookkeeping around them is here. Forecasts and bounds are floored at 0 — won revenue is never
negative, and an additive model's band can reach below it (**Choice**). A band narrower than a cent is
degenerate — a flat history (every period alike, or the same new business after each past instant and no open
deal) has no spread, which is no evidence of certainty — so that period gets no band and `basis` says why
(**Choice**: no band rather than a made-up minimum width; the backtest's coverage leaves it out).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WEIGHTED, PIPELINE_CONVERSION, TREND, SEASONAL, NAIVE = "weighted", "pipeline_conversion", "trend", "seasonal", "naive"
METHODS = (WEIGHTED, PIPELINE_CONVERSION, TREND, SEASONAL, NAIVE)
LABELS = {
    WEIGHTED: "Weighted pipeline: open deals × probability, by expected close date",
    PIPELINE_CONVERSION: "Pipeline conversion: open deals × their stage's win rate and time to win as of then",
    TREND: "Trend: exponential smoothing of won per period, damped trend (ETS A,Ad,N)",
    SEASONAL: "Seasonal: exponential smoothing with a yearly season (ETS A,Ad,A)",
    NAIVE: "Naive: the same period a year before, else the last period",
}
SEASON = {"month": 12, "quarter": 4}
MAX_PERIODS = 24  # a horizon longer than two years forecasts nothing anyone plans by
TREND_MIN = 10  # statsmodels' heuristic start of ETS needs 10 observations (and 10 + 2·(m//2) with a season)
NAIVE_DIFFERENCES = 4  # differences a random walk's spread is estimated from, at least
MIN_CLOSED = 20  # closed deals from a stage before its win rate and time to win are trusted (±11 points at 50 %)
MAX_ANALOGUES = 6  # past instants like T whose new deals' wins stand for the next ones': half a year of months
MIN_ANALOGUES = 3  # fewer, and a spread (ddof 1) of new deals' wins says nothing: the part is left out and said
MIN_BAND_CENTS = 1  # a band narrower (before rounding) is degenerate: a flat history's zero spread, not certainty


def require_methods(names: Sequence[str] | None) -> tuple[str, ...]:
    """The methods asked for (all when none), in `METHODS` order; ValueError with a sentence otherwise."""
    if not names:
        return METHODS
    unknown = [name for name in names if name not in METHODS]
    if unknown:
        raise ValueError(f"unknown forecast method {unknown[0]!r}; expected one of: {', '.join(METHODS)}")
    return tuple(name for name in METHODS if name in names)


def require_periods(periods: int) -> int:
    if isinstance(periods, bool) or not isinstance(periods, int) or not 1 <= periods <= MAX_PERIODS:
        raise ValueError(f"the number of periods to forecast must be from 1 to {MAX_PERIODS} (got {periods!r})")
    return periods


def require_level(level: int) -> int:
    """The band's confidence in whole percent: 50–99 (80 is the custom for sales forecasts)."""
    if isinstance(level, bool) or not isinstance(level, int) or not 50 <= level <= 99:
        raise ValueError(f"the interval level must be a whole percent from 50 to 99 (got {level!r})")
    return level


@dataclass(frozen=True)
class Point:
    """One period's forecast and band (None: the method has no error model), in cents."""

    forecast: int
    lower: int | None = None
    upper: int | None = None


@dataclass(frozen=True)
class MethodForecast:
    method: str
    points: tuple[Point, ...]  # one per horizon period; empty when not available
    basis: str | None = None  # what the number rests on (model, history length, deals left out)
    reason: str | None = None  # why there is no number

    @property
    def available(self) -> bool:
        return self.reason is None


def not_enough(method: str, have: int, need: int, what: str = "periods") -> MethodForecast:
    return MethodForecast(method, (), reason=f"not enough history: {have} {what}, need {need}")


def _cents(value: float) -> int:
    return max(0, round(value))


def _points(mean: Sequence[float], bounds: Any) -> tuple[Point, ...]:
    """Points from a model's mean and its (lower, upper) rows, floored at 0; ArithmeticError when the model
    gave no finite number (a fit that did not converge to anything). A band under `MIN_BAND_CENTS` wide is
    degenerate: the point has none (`_band_note` says why)."""
    values = [float(v) for v in mean] + [float(v) for row in bounds for v in row]
    if not all(math.isfinite(v) for v in values):
        raise ArithmeticError("the model gave no finite forecast")
    return tuple(Point(_cents(m)) if float(high) - float(low) < MIN_BAND_CENTS else
                 Point(_cents(m), _cents(low), _cents(high)) for m, (low, high) in zip(mean, bounds))


def _band_note(basis: str, points: Sequence[Point]) -> str:
    """`basis`, saying which periods have no band because theirs was degenerate (`_points`)."""
    degenerate = sum(1 for point in points if point.lower is None)
    if not degenerate:
        return basis
    return (f"{basis}; no band for {degenerate} of {len(points)} periods: the history it rests on did not vary, "
            "so there was no error to measure (a band of zero width would claim certainty)")


def _unfitted(method: str, error: Exception) -> MethodForecast:
    """A history the model could not be fitted to: said, as a short history is — not a 422 for the asker, whose
    input was fine, nor a 500."""
    return MethodForecast(method, (), reason=f"the model could not be fitted to this history ({error})")


# --- time series of won per period ------------------------------------------------------------------


def ets_forecast(values: Sequence[float], horizon: int, level: int, season: int | None) -> MethodForecast:
    """`trend` (season None) or `seasonal` (season 12 or 4): ETS with a damped additive trend fitted by
    statsmodels, its prediction interval at `level` %."""
    method = TREND if season is None else SEASONAL
    need = TREND_MIN if season is None else max(2 * season, TREND_MIN + 2 * (season // 2))
    if len(values) < need:
        return not_enough(method, len(values), need)
    import warnings

    import numpy as np
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    seasonal = {} if season is None else {"seasonal": "add", "seasonal_periods": season}
    try:
        with warnings.catch_warnings():  # convergence chatter on short, flat series; the interval says how good it is
            warnings.simplefilter("ignore")
            fitted = ETSModel(pd.Series(values, dtype=float), error="add", trend="add", damped_trend=True,
                              initialization_method="heuristic", **seasonal).fit(disp=False)
        prediction = fitted.get_prediction(start=len(values), end=len(values) + horizon - 1)
        points = _points(prediction.predicted_mean, prediction.pred_int(alpha=1 - level / 100).values)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as error:
        return _unfitted(method, error)
    shape = "ETS(A,Ad,N)" if season is None else f"ETS(A,Ad,A), a season of {season} periods"
    return MethodForecast(method, points, _band_note(f"{shape} fitted to {len(values)} periods", points))


def naive_forecast(values: Sequence[float], horizon: int, level: int, season: int) -> MethodForecast:
    """The same period a year before — SARIMAX(0,0,0)(0,1,0,season), a seasonal random walk — when the history
    holds a year and `NAIVE_DIFFERENCES` periods; else the last period — SARIMAX(0,1,0), a random walk."""
    yearly = len(values) >= season + NAIVE_DIFFERENCES
    if not yearly and len(values) < 1 + NAIVE_DIFFERENCES:
        return not_enough(NAIVE, len(values), 1 + NAIVE_DIFFERENCES)
    import warnings

    import numpy as np
    import pandas as pd
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    orders = {"order": (0, 0, 0), "seasonal_order": (0, 1, 0, season)} if yearly else {"order": (0, 1, 0)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = SARIMAX(pd.Series(values, dtype=float), **orders).fit(disp=False).get_forecast(horizon)
        points = _points(found.predicted_mean, found.conf_int(alpha=1 - level / 100).values)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as error:
        return _unfitted(NAIVE, error)
    basis = "the same period a year before" if yearly else "the last period"
    basis = f"{basis} (a {'seasonal ' if yearly else ''}random walk), {len(values)} periods"
    return MethodForecast(NAIVE, points, _band_note(basis, points))


# --- pipeline conversion -----------------------------------------------------------------------------

OPEN_AT_T, WON_BY_T, LOST_BY_T = 0, 1, 2  # a stage entry's outcome as of T (statsmodels' status codes)


@dataclass(frozen=True)
class StageHistory:
    """How the entries into one stage had ended as of T: days from the entry to the outcome (to T for those
    still open), the outcome (`OPEN_AT_T` censored, `WON_BY_T`, `LOST_BY_T`) and how many entries had each."""

    days: Sequence[int]
    outcomes: Sequence[int]
    counts: Sequence[int]

    @property
    def closed(self) -> int:
        return sum(count for outcome, count in zip(self.outcomes, self.counts) if outcome != OPEN_AT_T)


class StageOutlook:
    """The cumulative incidence of won and of lost against days in a stage (Aalen–Johansen, statsmodels)."""

    def __init__(self, history: StageHistory) -> None:
        import numpy as np
        from statsmodels.duration.survfunc import CumIncidenceRight

        incidence = CumIncidenceRight(np.asarray(history.days, dtype=float), np.asarray(history.outcomes),
                                      freq_weights=np.asarray(history.counts, dtype=float))
        self._times = incidence.times
        self._won, self._lost = (list(incidence.cinc) + [np.zeros(len(incidence.times))] * 2)[:2]

    def _at(self, curve: Any, day: int) -> float:
        """The incidence of outcomes within `day` days (0 before the first)."""
        import numpy as np

        index = int(np.searchsorted(self._times, day, side="right")) - 1
        return 0.0 if index < 0 else float(curve[index])

    def win_chances(self, age: int, windows: Sequence[tuple[int, int]]) -> list[float] | None:
        """For an entry still open after `age` days: the chance it is won `lo` to `hi` − 1 days after its entry,
        per window; None when no past entry stayed open that long (nothing to learn its chances from)."""
        open_then = 1 - self._at(self._won, age - 1) - self._at(self._lost, age - 1)
        if open_then <= 1e-9:
            return None
        return [min(1.0, max(0.0, self._at(self._won, hi - 1) - self._at(self._won, max(lo, age) - 1)) / open_then)
                if hi > age else 0.0 for lo, hi in windows]  # min: rounding of the estimator's floats


@dataclass(frozen=True)
class OpenGroup:
    """Open deals at T in one stage that entered it on the same day: their amounts' sum and sum of squares in
    the reporting currency (cents), their age in the stage (days) and each horizon period's window in days
    since their entry, [lo, hi)."""

    stage: tuple[str, str]  # pipeline, stage
    deals: int
    amount: float
    amount_squared: float
    age: int
    windows: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class NewBusiness:
    """Per horizon period, what deals opened after a past instant placed as T is (the same time before the
    same-placed period) won in that period, for each of the most recent such instants whose period had ended by
    T (cents of the reporting currency; at most `MAX_ANALOGUES`)."""

    analogues: tuple[tuple[float, ...], ...]


def conversion_forecast(stages: dict[tuple[str, str], StageHistory], groups: Sequence[OpenGroup], horizon: int,
                        level: int, new_business: NewBusiness | None = None) -> MethodForecast:
    """`pipeline_conversion`: per period, Σ amount × chance of being won in it, plus the mean of what new deals
    won after past instants like T (`NewBusiness`); the band is the normal approximation of the sum of
    independent win/no-win outcomes (variance Σ amount² q(1 − q)) plus the new deals' spread (sample variance),
    which leaves out the uncertainty of the rates themselves (**Choice**). Stages with fewer than `MIN_CLOSED`
    closed entries, deals older in their stage than every past entry, and new deals in periods with fewer than
    `MIN_ANALOGUES` past instants to learn from are left out and said in `basis`."""
    closed = sum(history.closed for history in stages.values())
    if closed < MIN_CLOSED:
        return not_enough(PIPELINE_CONVERSION, closed, MIN_CLOSED, "closed stage entries")
    from scipy.stats import norm

    outlooks = {key: StageOutlook(history) for key, history in stages.items() if history.closed >= MIN_CLOSED}
    mean, variance, unscored, stale = [0.0] * horizon, [0.0] * horizon, 0, 0
    for group in groups:
        outlook = outlooks.get(group.stage)
        chances = None if outlook is None else outlook.win_chances(group.age, group.windows)
        if chances is None:
            unscored += group.deals if outlook is None else 0
            stale += group.deals if outlook is not None else 0
            continue
        for k, q in enumerate(chances):
            mean[k] += group.amount * q
            variance[k] += group.amount_squared * q * (1 - q)
    short = _add_new_business(new_business, mean, variance)
    z = float(norm.ppf(0.5 + level / 200))
    bounds = [(m - z * math.sqrt(v), m + z * math.sqrt(v)) for m, v in zip(mean, variance)]
    deals = sum(group.deals for group in groups)
    basis = f"{deals} open deals, {closed} closed stage entries before"
    if new_business is not None and short < horizon:
        basis += f"; deals opened later as after the last {len(max(new_business.analogues, key=len))} like instants"
    if short:
        basis += (f"; deals opened later left out of {short} periods (fewer than {MIN_ANALOGUES} past instants "
                  "like T whose period had ended)")
    if unscored:
        basis += f"; {unscored} deals left out (their stage had fewer than {MIN_CLOSED} closed)"
    if stale:
        basis += f"; {stale} deals left out (open longer than any deal before them in their stage)"
    points = _points(mean, bounds)
    return MethodForecast(PIPELINE_CONVERSION, points, _band_note(basis, points))


def _add_new_business(new_business: NewBusiness | None, mean: list[float], variance: list[float]) -> int:
    """Add the new deals' mean and spread per period (numpy's); the number of periods left without them."""
    import numpy as np

    short = 0
    for k in range(len(mean)):
        found = new_business.analogues[k] if new_business is not None and k < len(new_business.analogues) else ()
        if len(found) < MIN_ANALOGUES:
            short += 1
            continue
        mean[k] += float(np.mean(found))
        variance[k] += float(np.var(found, ddof=1))
    return short


# --- backtest errors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Errors:
    """A method's errors over the periods compared, in cents; MAPE and coverage as percent (None: undefined)."""

    compared: int
    mae: int | None
    mape: float | None  # over periods whose actual is not 0
    bias: int | None  # mean of forecast − actual: > 0 over-forecasts
    coverage: float | None  # share of actuals inside the band, where the method has one

    def to_dict(self) -> dict[str, Any]:
        return {"periods_compared": self.compared, "mae_cents": self.mae,
                "mape_percent": None if self.mape is None else f"{self.mape:.1f}", "bias_cents": self.bias,
                "coverage_percent": None if self.coverage is None else f"{self.coverage:.1f}"}


def errors(pairs: Sequence[tuple[Point, int]]) -> Errors:
    """MAE, MAPE, bias and band coverage of (forecast, actual) pairs (numpy's means)."""
    if not pairs:
        return Errors(0, None, None, None, None)
    import numpy as np

    forecast = np.array([point.forecast for point, _ in pairs], dtype=float)
    actual = np.array([value for _, value in pairs], dtype=float)
    nonzero = actual != 0
    banded = [(p.lower <= a <= p.upper) for p, a in pairs if p.lower is not None and p.upper is not None]
    return Errors(len(pairs), round(float(np.mean(np.abs(forecast - actual)))),
                  float(np.mean(np.abs(forecast - actual)[nonzero] / actual[nonzero]) * 100) if nonzero.any() else None,
                  round(float(np.mean(forecast - actual))),
                  100 * sum(banded) / len(banded) if banded else None)
