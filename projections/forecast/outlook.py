"""The history-based forecast as of an instant T, and its backtest: what each method of
`domain.forecast_methods` says will be won in the K whole periods starting at or after T, and — for a past T —
what was won in them as known at a later instant U, with each method's errors.

As of T means as of T: every fact comes from the forecast read model's versions in force at T (or begun by T),
so events recorded after T — later wins, later stage moves, deals opened later — change nothing
(`tests/unit/projections/forecast/test_outlook.py::test_events_after_t_change_nothing`). The series the time
series methods fit is won per whole period ended by T, from the first period holding a win (**Choice**: the
months before the first win are the business not selling yet, not selling nothing). Periods are those of
`zone` (`CRM_TIME_ZONE`).

The sums are SQL's (per currency and local day, `projections.zone_sql`), not a Python loop over deals; open
deals are grouped by stage and entry day in SQL too. Money is in the reporting currency at the rates in force
at T for the forecast and at U for what actually closed (what each instant knew); sums of squares (the
conversion band) are converted at the rate squared.

The JSON shape (`Outlook.to_dict`), for the dashboard's chart: as_of, actual_as_of (backtest), zone, grain,
periods, level_percent, currency, horizon [period], history [period + won_cents], actuals [period + won_cents +
complete] (backtest), methods [{method, label, available, reason, basis, periods [period + forecast_cents,
lower_cents, upper_cents (+ actual_cents, complete, error_cents)], errors {periods_compared, mae_cents,
mape_percent, bias_cents, coverage_percent} (backtest)}], unconverted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from domain.exchange_rates import Conversion, add_sums
from domain.forecast_methods import (LABELS, MAX_ANALOGUES, NAIVE, PIPELINE_CONVERSION, SEASON, SEASONAL, TREND,
                                     WEIGHTED, LOST_BY_T, OPEN_AT_T, WON_BY_T, Errors, MethodForecast, NewBusiness,
                                     OpenGroup, Point,
                                     StageHistory, conversion_forecast, errors, ets_forecast, naive_forecast,
                                     require_level, require_methods, require_periods)
from domain.periods import Period, day_of_number, period_of, period_of_day
from projections.forecast.queries import ForecastQueries, require_forecast_grain
from projections.ports import Store
from projections.tables import from_micros, micros
from projections.zone_sql import DAY_MICROS, local_day_sql

_IN_FORCE = "valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"
_OUTCOME = {"won": WON_BY_T, "lost": LOST_BY_T}


def horizon_of(as_of: datetime, grain: str, periods: int, zone: tzinfo) -> list[Period]:
    """The `periods` whole periods starting at or after `as_of` (**Choice**: the period under way at T is
    partly over, and what is already won in it is no forecast)."""
    first = period_of(as_of, grain, zone)
    if first.start < as_of:
        first = first.next()
    found = [first]
    while len(found) < periods:
        found.append(found[-1].next())
    return found


@dataclass(frozen=True)
class Actual:
    period: Period
    won_cents: int
    complete: bool  # the period had ended by the instant the actuals are as of

    def to_dict(self) -> dict[str, Any]:
        return {**_period(self.period), "won_cents": self.won_cents, "complete": self.complete}


@dataclass(frozen=True)
class Outlook:
    """The forecast as of T by each method asked for; with `actuals`, a backtest."""

    as_of: datetime
    zone: tzinfo
    grain: str
    level: int
    currency: str
    horizon: list[Period]
    history: list[tuple[Period, int]]
    forecasts: list[MethodForecast]
    unconverted: dict[str, int]
    actual_as_of: datetime | None = None
    actuals: list[Actual] | None = None

    def errors(self, forecast: MethodForecast) -> Errors:
        """The method's errors over the horizon periods complete by U."""
        assert self.actuals is not None
        return errors([(point, actual.won_cents) for point, actual in zip(forecast.points, self.actuals)
                       if actual.complete])

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"as_of": self.as_of.astimezone(self.zone).isoformat()}
        if self.actual_as_of is not None:
            found["actual_as_of"] = self.actual_as_of.astimezone(self.zone).isoformat()
        found.update({"zone": str(self.zone), "grain": self.grain, "periods": len(self.horizon),
                      "level_percent": self.level, "currency": self.currency,
                      "horizon": [period.to_dict() for period in self.horizon],
                      "history": [{**_period(period), "won_cents": cents} for period, cents in self.history]})
        if self.actuals is not None:
            found["actuals"] = [actual.to_dict() for actual in self.actuals]
        found["methods"] = [self._method(forecast) for forecast in self.forecasts]
        found["unconverted"] = dict(sorted(self.unconverted.items()))
        return found

    def _method(self, forecast: MethodForecast) -> dict[str, Any]:
        rows = []
        for k, point in enumerate(forecast.points):
            row = {**_period(self.horizon[k]), "forecast_cents": point.forecast, "lower_cents": point.lower,
                   "upper_cents": point.upper}
            if self.actuals is not None:
                actual = self.actuals[k]
                row.update({"actual_cents": actual.won_cents, "complete": actual.complete,
                            "error_cents": point.forecast - actual.won_cents if actual.complete else None})
            rows.append(row)
        found = {"method": forecast.method, "label": LABELS[forecast.method], "available": forecast.available,
                 "reason": forecast.reason, "basis": forecast.basis, "periods": rows}
        if self.actuals is not None:
            found["errors"] = self.errors(forecast).to_dict() if forecast.available else None
        return found


def _period(period: Period) -> dict[str, str]:
    found = period.to_dict()
    return {"period": found["period"], "start": found["start"], "end": found["end"]}


class OutlookQueries:
    """The history-based forecast and its backtest, from the forecast read model's tables."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def forecast(self, as_of: datetime, grain: str, periods: int, methods: Sequence[str] | None, level: int,
                 zone: tzinfo, money: Conversion) -> Outlook:
        """What each method forecast at `as_of` for the next `periods` periods (ValueError on bad input)."""
        require_forecast_grain(grain)
        chosen, horizon = require_methods(methods), horizon_of(as_of, grain, require_periods(periods), zone)
        require_level(level)
        unconverted: dict[str, int] = {}
        history = self._history(as_of, grain, zone, money, unconverted)
        values = [float(cents) for _, cents in history]
        forecasts = [self._method(name, as_of, horizon, values, level, zone, money, unconverted) for name in chosen]
        return Outlook(as_of, zone, grain, level, money.reporting, horizon, history, forecasts, unconverted)

    def backtest(self, as_of: datetime, actual_as_of: datetime, grain: str, periods: int,
                 methods: Sequence[str] | None, level: int, zone: tzinfo, money: Conversion,
                 actual_money: Conversion) -> Outlook:
        """The forecast as of `as_of` beside what was won in its periods as known at `actual_as_of`."""
        if actual_as_of <= as_of:
            raise ValueError("a backtest compares a forecast with what closed later: actual_as_of must be after as_of")
        outlook = self.forecast(as_of, grain, periods, methods, level, zone, money)
        unconverted = dict(outlook.unconverted)
        won = self._won(actual_as_of, grain, zone, actual_money, unconverted, outlook.horizon[0].start,
                        outlook.horizon[-1].end)
        actuals = [Actual(period, won.get(period.first, 0), period.end <= actual_as_of) for period in outlook.horizon]
        return Outlook(as_of, zone, grain, level, money.reporting, outlook.horizon, outlook.history,
                       outlook.forecasts, unconverted, actual_as_of, actuals)

    # --- methods --------------------------------------------------------------------------------

    def _method(self, name: str, as_of: datetime, horizon: list[Period], values: list[float], level: int,
                zone: tzinfo, money: Conversion, unconverted: dict[str, int]) -> MethodForecast:
        season = SEASON[horizon[0].grain]
        if name == TREND:
            return ets_forecast(values, len(horizon), level, None)
        if name == SEASONAL:
            return ets_forecast(values, len(horizon), level, season)
        if name == NAIVE:
            return naive_forecast(values, len(horizon), level, season)
        if name == PIPELINE_CONVERSION:
            stages, groups = self._stage_histories(as_of), self._open_groups(as_of, horizon, money, unconverted)
            return conversion_forecast(stages, groups, len(horizon), level, self._new_business(as_of, horizon, money))
        assert name == WEIGHTED, name
        return self._weighted(as_of, horizon, zone, money)

    def _weighted(self, as_of: datetime, horizon: list[Period], zone: tzinfo, money: Conversion) -> MethodForecast:
        """The forecast read model's weighted pipeline per period as of T (its unconverted amounts are the
        same deals' as the other methods', so they are not added twice)."""
        report = ForecastQueries(self.store).report(as_of, horizon[0].grain, None, None, zone, money)
        weighted = {row.period.first: row.weighted_pipeline_cents for row in report.rows}
        basis = "open deals' amount × probability in the period of their expected close date"
        if report.undated:
            basis += f"; {report.undated} open deals without a close date left out"
        return MethodForecast(WEIGHTED, tuple(Point(weighted.get(period.first, 0)) for period in horizon), basis)

    # --- facts as of T --------------------------------------------------------------------------

    def _won(self, at: datetime, grain: str, zone: tzinfo, money: Conversion, unconverted: dict[str, int],
             since: datetime | None = None, until: datetime | None = None) -> dict[Any, int]:
        """Won per period (first day → cents of the reporting currency) as known at `at`: SQL sums per currency
        and local day, then days into periods and currencies converted."""
        t = micros(at)
        window, params = "", [t, t]
        if since is not None and until is not None:
            window, params = " AND won_at >= ? AND won_at < ?", [t, t, micros(since), micros(until)]
        else:  # the zone's offsets are found for the years the wins span, not 1900–3000 (≈ 2 s for Shanghai)
            first = self.store.query(f"SELECT MIN(won_at) FROM forecast_deal_versions WHERE {_IN_FORCE} "
                                     f"AND status = 'won'", params)[0][0]
            since, until = (at, at) if first is None else (from_micros(int(first)), at)
        day = local_day_sql("won_at", zone, since, until + timedelta(microseconds=1))
        rows = self.store.query(
            f"SELECT currency, {day} AS day, SUM(amount_cents) FROM forecast_deal_versions "
            f"WHERE {_IN_FORCE} AND status = 'won'{window} GROUP BY 1, 2", params)
        sums: dict[Any, dict[str, int]] = defaultdict(dict)
        for currency, day, cents in rows:
            first = period_of_day(day_of_number(int(day)), grain, zone).first
            sums[first][currency] = sums[first].get(currency, 0) + int(cents)
        found = {}
        for first, by_currency in sums.items():
            converted = money.convert(by_currency)
            found[first] = converted.cents
            add_sums(unconverted, converted.unconverted)
        return found

    def _history(self, as_of: datetime, grain: str, zone: tzinfo, money: Conversion,
                 unconverted: dict[str, int]) -> list[tuple[Period, int]]:
        """Won per whole period ended by T, from the first period with a win (0 where none was won)."""
        won = self._won(as_of, grain, zone, money, unconverted)
        if not won:
            return []
        period, found = Period(grain, min(won), zone), []
        while period.end <= as_of:
            found.append((period, won.get(period.first, 0)))
            period = period.next()
        return found

    def _new_business(self, as_of: datetime, horizon: list[Period], money: Conversion) -> NewBusiness:
        """What deals opened after each past instant like T won in its same-placed period (`_analogue_windows`),
        as known at T: one read of the deals won since the earliest cutoff (a window of at most
        `MAX_ANALOGUES` + the horizon's periods, whatever the length of the history), with their opening."""
        t = micros(as_of)
        first = self.store.query("SELECT MIN(valid_from) FROM forecast_deal_versions WHERE valid_from <= ?", [t])[0][0]
        # Instants before the first deal are not like T: the business was not in the CRM yet (zeros, not data).
        windows = [[w for w in found if first is not None and w[0] >= first] for found in _analogue_windows(as_of, horizon)]
        earliest = min((cutoff for found in windows for cutoff, _, _ in found), default=None)
        if earliest is None:
            return NewBusiness(tuple(() for _ in horizon))
        rows = self.store.query(
            "SELECT v.currency, v.won_at, v.amount_cents, (SELECT MIN(o.valid_from) FROM forecast_deal_versions o "
            f"WHERE o.deal_id = v.deal_id) FROM forecast_deal_versions v WHERE {_IN_FORCE.replace('valid_', 'v.valid_')} "
            "AND v.status = 'won' AND v.won_at >= ? AND v.won_at < ?", [t, t, earliest, t])
        wins = [(int(opened), int(won_at), int(cents) * factor) for currency, won_at, cents, opened in rows
                if (factor := _rate(money, currency)) is not None]  # no rate at T: not counted (history only)
        return NewBusiness(tuple(
            tuple(sum(amount for opened, won_at, amount in wins if opened > cutoff and start <= won_at < end)
                  for cutoff, start, end in found)
            for found in windows))

    def _stage_histories(self, as_of: datetime) -> dict[tuple[str, str], StageHistory]:
        """Per pipeline stage, every entry into it by T with its outcome as of T and the days it took (to T
        while open), counted per (outcome, days) in SQL."""
        t = micros(as_of)
        rows = self.store.query(
            f"WITH entries AS ({_ENTRIES}), closed AS ({_CLOSED}) "
            f"SELECT e.pipeline, e.stage, COALESCE(c.status, 'open'), "
            f"(COALESCE(c.closed_at, ?) - e.entered) / {DAY_MICROS} AS days, COUNT(*) "
            f"FROM entries e LEFT JOIN closed c ON c.deal_id = e.deal_id GROUP BY 1, 2, 3, 4", [t, t, t, t, t, t])
        collected: dict[tuple[str, str], tuple[list[int], list[int], list[int]]] = defaultdict(lambda: ([], [], []))
        for pipeline, stage, status, days, count in rows:
            lists = collected[(pipeline, stage)]
            lists[0].append(int(days))
            lists[1].append(_OUTCOME.get(status, OPEN_AT_T))
            lists[2].append(int(count))
        return {key: StageHistory(*lists) for key, lists in collected.items()}

    def _open_groups(self, as_of: datetime, horizon: list[Period], money: Conversion,
                     unconverted: dict[str, int]) -> list[OpenGroup]:
        """The deals open at T, per stage, currency and day of entry into that stage (SQL), in the reporting
        currency, with each horizon period as a window of days since that entry day."""
        t = micros(as_of)
        rows = self.store.query(  # the entry of each open deal alone, by its key: 0.13 s against 0.9 s grouping
            # every deal's entries first (179,310 deal versions, 208 groups; CPU, SQLite)
            f"WITH open_deals AS (SELECT v.pipeline, v.stage, v.currency, v.amount_cents, "
            f"(SELECT MIN(e.valid_from) FROM forecast_deal_versions e WHERE e.deal_id = v.deal_id "
            f"AND e.pipeline = v.pipeline AND e.stage = v.stage AND e.status = 'open' AND e.valid_from <= ?) AS entered "
            f"FROM forecast_deal_versions v WHERE v.valid_from <= ? AND (v.valid_to IS NULL OR v.valid_to > ?) "
            f"AND v.status = 'open') SELECT pipeline, stage, currency, entered / {DAY_MICROS} AS day, COUNT(*), "
            f"SUM(amount_cents), SUM(CAST(amount_cents AS DOUBLE PRECISION) * amount_cents) FROM open_deals "
            f"GROUP BY 1, 2, 3, 4", [t, t, t])
        groups = []
        for pipeline, stage, currency, day, deals, cents, squares in rows:
            factor = _rate(money, currency)
            if factor is None:
                add_sums(unconverted, {currency: int(cents)})
                continue
            entered = int(day) * DAY_MICROS
            windows = tuple(((micros(p.start) - entered) // DAY_MICROS, (micros(p.end) - entered) // DAY_MICROS)
                            for p in horizon)
            groups.append(OpenGroup((pipeline, stage), int(deals), float(cents) * factor,
                                    float(squares) * factor * factor, (t - entered) // DAY_MICROS, windows))
        return groups


def _analogue_windows(as_of: datetime, horizon: list[Period]) -> list[list[tuple[int, int, int]]]:
    """Per horizon period, the (cutoff, start, end) in µs of up to `MAX_ANALOGUES` past instants placed as T is:
    the period shifted back by whole periods until it had ended by T, its cutoff as far before the shifted first
    period as T is before the first (the first period of a month horizon starts after T's month: the gap)."""
    t, gap = micros(as_of), micros(horizon[0].start) - micros(as_of)
    shifted = list(horizon)
    windows: list[list[tuple[int, int, int]]] = [[] for _ in horizon]
    for _ in range(MAX_ANALOGUES + len(horizon) + 1):
        shifted = [period.previous() for period in shifted]
        cutoff = micros(shifted[0].start) - gap
        for k, period in enumerate(shifted):
            if micros(period.end) <= t and len(windows[k]) < MAX_ANALOGUES:
                windows[k].append((cutoff, micros(period.start), micros(period.end)))
    return windows


def _rate(money: Conversion, currency: str) -> float | None:
    if currency == money.reporting:
        return 1.0
    found = money.rates.get(currency)
    return None if found is None else float(found.rate)


# A deal's first entry into each stage by T (**Choice**: a deal back in a stage it had left counts from its first
# entry, as the funnel's stage reached does).
_ENTRIES = ("SELECT deal_id, pipeline, stage, MIN(valid_from) AS entered FROM forecast_deal_versions "
            "WHERE valid_from <= ? AND status = 'open' GROUP BY deal_id, pipeline, stage")
# The deals closed at T and when they closed: the first version of their closed streak (after their last open
# version), not the version in force at T — a closed deal's owner may still change, and its win 10 days after
# entering the stage must not count as 100 because it was reassigned on day 100 (review of issue 15, P2).
_CLOSED = ("SELECT v.deal_id, v.status, (SELECT MIN(w.valid_from) FROM forecast_deal_versions w "
           "WHERE w.deal_id = v.deal_id AND w.status = v.status AND w.valid_from <= ? AND w.valid_from >= "
           "COALESCE((SELECT MAX(o.valid_to) FROM forecast_deal_versions o WHERE o.deal_id = v.deal_id "
           "AND o.status = 'open' AND o.valid_from <= ?), 0)) AS closed_at "
           f"FROM forecast_deal_versions v WHERE {_IN_FORCE.replace('valid_', 'v.valid_')} "
           "AND v.status IN ('won', 'lost')")
