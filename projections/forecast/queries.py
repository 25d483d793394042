"""The query side of the forecast read model: per period (month or quarter of the installation's zone) and
per owner, team, region or pipeline, as of any instant T — closed won, commit, best case, pipeline, omitted,
weighted pipeline, target, attainment and gap to target.

What places a deal, as it stood at T: a deal won by T belongs to the period of its win; an open one to the
period of its expected close date (a local date of the zone); a lost one, or an open one without a close date
(counted apart as `undated`), to none. Its category and probability are `domain.forecasting.standing`'s: its
own, else its stage's default in the pipeline's definition in force at T. A deal is grouped by its owner at
T, that owner's team at T (`domain.targets.OwnerTeam`), its customer's region, its pipeline.

Money is in the reporting currency at the rates in force at T (`Conversion`), as the campaigns read model
converts: an amount whose currency has no rate at T counts 0 and is listed in `unconverted`, by currency.
Targets are those in force at T, converted the same way: an owner row shows the owner's target, a team row the
team's, a row of all deals the sum of the owners' targets; a quarter's target is its own, else the sum of its
months' (`domain.targets.target_of_period`). Region and pipeline rows have none.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import orjson

from domain.exchange_rates import Conversion, add_sums
from domain.forecasting import (BEST_CASE, CLOSED, COMMIT, OMITTED, PIPELINE, StageForecast, attainment_percent,
                                stage_default, standing, weighted_cents)
from domain.periods import UTC, Period, parse_period, period_of
from domain.deal import OPEN
from domain.pipeline import LOST, WON
from domain.targets import OWNER, TARGET_GRAINS, TEAM, target_of_period
from projections.forecast.rows import DealVersionRow
from projections.ports import Store
from projections.tables import from_micros, in_force_at, micros, top_span_sql

BY = (OWNER, TEAM, "region", "pipeline")
_IN_FORCE = "valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"


def require_forecast_grain(grain: str) -> str:
    if grain not in TARGET_GRAINS:
        raise ValueError(f"a forecast is by month or quarter, not {grain!r}")
    return grain


def require_forecast_by(by: str | None) -> str | None:
    if by is not None and by not in BY:
        raise ValueError(f"a forecast is grouped by {', '.join(BY)}, not {by!r}")
    return by


def forecast_period(label: str, zone: tzinfo) -> Period:
    """The month or quarter a label names, in `zone`; ValueError with a sentence otherwise."""
    period = parse_period(label, zone)
    if period.grain not in TARGET_GRAINS:
        raise ValueError(f"a forecast period is a month (2026-03) or a quarter (2026-Q1), not a {period.grain} "
                         f"({label!r})")
    return period


@dataclass
class _Tally:
    deals: int = 0
    sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys((CLOSED, COMMIT, BEST_CASE, PIPELINE,
                                                                         OMITTED), 0))
    weighted: int = 0


@dataclass(frozen=True)
class ForecastRow:
    """One period (and group) as of T. Money in cents of the report's currency."""

    period: Period
    group: str | None  # the value of `by`; None when not grouped
    deals: int
    closed_won_cents: int
    commit_cents: int
    best_case_cents: int
    pipeline_cents: int
    omitted_cents: int
    weighted_pipeline_cents: int  # open deals but omitted ones, each amount × its probability
    target_cents: int | None

    @property
    def attainment_percent(self) -> str | None:
        return attainment_percent(self.closed_won_cents, self.target_cents)

    @property
    def gap_cents(self) -> int | None:
        """Still to win to reach the target (negative: exceeded); None without a target."""
        return None if self.target_cents is None else self.target_cents - self.closed_won_cents

    def to_dict(self) -> dict[str, Any]:
        return {**self.period.to_dict(), "group": self.group, "deals": self.deals,
                "closed_won_cents": self.closed_won_cents, "commit_cents": self.commit_cents,
                "best_case_cents": self.best_case_cents, "pipeline_cents": self.pipeline_cents,
                "omitted_cents": self.omitted_cents, "weighted_pipeline_cents": self.weighted_pipeline_cents,
                "commit_forecast_cents": self.closed_won_cents + self.commit_cents,
                "best_case_forecast_cents": self.closed_won_cents + self.commit_cents + self.best_case_cents,
                "target_cents": self.target_cents, "attainment_percent": self.attainment_percent,
                "gap_cents": self.gap_cents}


@dataclass(frozen=True)
class ForecastReport:
    as_of: datetime
    zone: tzinfo
    grain: str
    by: str | None
    money: Conversion
    rows: list[ForecastRow]
    undated: int  # open deals without an expected close date (in no period)
    unconverted: dict[str, int]  # currency → cents of deal amounts and targets without a rate at T

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.astimezone(self.zone).isoformat(), "zone": str(self.zone), "grain": self.grain,
                "by": self.by, **self.money.to_dict(), "rows": [row.to_dict() for row in self.rows],
                "undated": self.undated, "unconverted": dict(sorted(self.unconverted.items()))}


class ForecastQueries:
    def __init__(self, store: Store) -> None:
        self.store = store

    def report(self, as_of: datetime, grain: str = "quarter", by: str | None = None, period: str | None = None,
               zone: tzinfo = UTC, money: Conversion = Conversion()) -> ForecastReport:
        """The forecast as of `as_of`: every period of `grain` holding a deal or a target, or only `period`."""
        require_forecast_by(by)
        only = None if period is None else forecast_period(period, zone)
        grain = only.grain if only is not None else require_forecast_grain(grain)
        facts = _Facts.load(self.store, micros(as_of)) if only is None else _Facts.of_period(self.store, micros(as_of), only)
        return _report(facts, as_of, grain, by, only, zone, money)

    def summary(self, as_of: datetime, zone: tzinfo = UTC, money: Conversion = Conversion()) -> dict[str, Any]:
        """Every grain and grouping as of `as_of`, from one read of the facts (equivalence checks, exports)."""
        facts = _Facts.load(self.store, micros(as_of))
        return {f"{grain}:{by}": _report(facts, as_of, grain, by, None, zone, money).to_dict()
                for grain in TARGET_GRAINS for by in (None, *BY)}


def _report(facts: _Facts, as_of: datetime, grain: str, by: str | None, only: Period | None, zone: tzinfo,
            money: Conversion) -> ForecastReport:
    unconverted: dict[str, int] = {}
    tallies, undated = _tally(facts, grain, by, zone, _Money(money, unconverted), only)
    targets = facts.targets_by_period(_Money(money, unconverted))
    keys = set(tallies) | _target_keys(targets, by, grain)
    if only is not None:
        keys = {key for key in keys if key[0] == only.first} | ({(only.first, None)} if by is None else set())
    periods = {first: Period(grain, first, zone) for first, _ in keys}
    rows = [_row(periods[first], group, tallies.get((first, group)), _target(targets, by, group, periods[first]))
            for first, group in sorted(keys, key=lambda k: (k[0], k[1] or ""))]
    return ForecastReport(as_of, zone, grain, by, money, rows, undated, unconverted)


@dataclass(frozen=True)
class _Money:
    """The report's conversion, noting what it could not convert (currency → cents) in `unconverted`."""

    conversion: Conversion
    unconverted: dict[str, int]

    def cents(self, cents: int, currency: str) -> int | None:
        value = self.conversion.cents(cents, currency)
        if value is None:
            add_sums(self.unconverted, {currency: cents})
        return value


# --- facts as of T ------------------------------------------------------------------------------


_DEAL_FIELDS = ", ".join(DealVersionRow._fields)


@dataclass
class _Facts:
    deals: list[DealVersionRow]
    stages: dict[str, tuple[list[str], dict[str, StageForecast]]]  # pipeline → (open stages, defaults set)
    teams: dict[str, str]  # owner → team
    regions: dict[str, str]  # customer → region
    targets: list[tuple[str, str, str, int, str]]  # scope, name, period, cents, currency
    undated: int | None = None  # counted by the database (`of_period`); None: counted from `deals`

    @classmethod
    def load(cls, store: Store, t: int) -> _Facts:
        """Every deal as it stood at T but the lost ones (no forecast counts them): the report of all periods."""
        return cls._with(store, t, [DealVersionRow._make(row) for row in store.query(
            f"SELECT {_DEAL_FIELDS} FROM forecast_deal_versions WHERE status <> '{LOST}' AND {_IN_FORCE}", [t, t])])

    @classmethod
    def of_period(cls, store: Store, t: int, period: Period) -> _Facts:
        """Only the deals one period's forecast counts, found by index: those won within it (by won_at) and
        the open ones whose close date falls in it (by close date), as they stood at T; the open undated ones
        only counted, found by span class (`projections.tables.in_force_at`). So its cost follows the period's
        deals, not every deal ever opened (a quarter's p95 flat from 10 % to 100 % of the history)."""
        first, last = period.first.isoformat(), (period.next().first - timedelta(days=1)).isoformat()
        deals = [DealVersionRow._make(row) for row in store.query(
            f"SELECT {_DEAL_FIELDS} FROM forecast_deal_versions WHERE {_IN_FORCE} AND ("
            f"(status = '{WON}' AND won_at >= ? AND won_at < ?) OR "
            f"(status = '{OPEN}' AND expected_close >= ? AND expected_close <= ?))",
            [t, t, micros(period.start), micros(period.end), first, last])]
        undated_rows = f"status = '{OPEN}' AND expected_close IS NULL"
        top = store.query(top_span_sql("forecast_deal_versions", within=undated_rows), [])[0][0]
        spans, params = in_force_at("span", "valid_from", t, undated_rows, top)
        undated = store.query(f"SELECT COUNT(*) FROM forecast_deal_versions WHERE {_IN_FORCE} AND {spans}",
                              [t, t, *params])[0][0]
        return replace(cls._with(store, t, deals), undated=int(undated))

    @classmethod
    def _with(cls, store: Store, t: int, deals: list[DealVersionRow]) -> _Facts:
        stages = {}
        for pipeline, text in store.query(f"SELECT pipeline, stages FROM forecast_pipeline_versions WHERE {_IN_FORCE}",
                                          [t, t]):
            listed = orjson.loads(text)
            stages[pipeline] = ([s[0] for s in listed], {s[0]: StageForecast(s[1], s[2]) for s in listed
                                                         if s[1] is not None})
        teams = dict(store.query(f"SELECT owner, team FROM forecast_team_versions WHERE {_IN_FORCE}", [t, t]))
        regions = _regions(store, {deal.customer_id for deal in deals})
        targets = store.query(f"SELECT scope, name, period, amount_cents, currency FROM forecast_target_versions "
                              f"WHERE {_IN_FORCE}", [t, t])
        return cls(deals, stages, teams, regions, [tuple(row) for row in targets])  # type: ignore[misc]

    def standing(self, deal: DealVersionRow) -> StageForecast:
        open_stages, defined = self.stages.get(deal.pipeline, ([], {}))
        return standing(deal.status, stage_default(open_stages, defined, deal.stage), deal.probability, deal.category)

    def group(self, deal: DealVersionRow, by: str | None) -> str | None:
        if by is None:
            return None
        return {OWNER: deal.owner, TEAM: self.teams.get(deal.owner, ""),
                "region": self.regions.get(deal.customer_id, ""), "pipeline": deal.pipeline}[by]

    def targets_by_period(self, money: _Money) -> dict[tuple[str, str], dict[str, int]]:
        """(scope, name) → period label → target cents in the reporting currency (each converted first; one
        without a rate is left out, and noted)."""
        found: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for scope, name, label, cents, currency in self.targets:
            value = money.cents(cents, currency)
            if value is not None:
                found[(scope, name)][label] = value
        return found


_FEW_CUSTOMERS = 2_000  # up to this many, their regions are read by key (one period's deals); else all at once


def _regions(store: Store, customers: set[str]) -> dict[str, str]:
    """The regions of the deals' customers: by key for a period's few (reading every customer made a
    quarter's forecast grow with the customers ever registered), all in one read for a report of every period."""
    if len(customers) > _FEW_CUSTOMERS:
        return dict(store.query("SELECT customer_id, region FROM forecast_customers"))
    wanted, found = sorted(customers), {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        found.update(store.query(f"SELECT customer_id, region FROM forecast_customers WHERE customer_id IN "
                                 f"({', '.join('?' * len(chunk))})", chunk))
    return found


def _tally(facts: _Facts, grain: str, by: str | None, zone: tzinfo, money: _Money,
           only: Period | None) -> tuple[dict[tuple[date, str | None], _Tally], int]:
    tallies: dict[tuple[date, str | None], _Tally] = defaultdict(_Tally)
    undated = 0
    for deal in facts.deals:
        if deal.status == LOST:
            continue
        if deal.status != WON and deal.expected_close is None:
            undated += 1
            continue
        period = _period(deal, grain, zone)
        if only is not None and period.first != only.first:
            continue
        stands = facts.standing(deal)
        cents = money.cents(deal.amount_cents, deal.currency) or 0
        tally = tallies[(period.first, facts.group(deal, by))]
        tally.deals += 1
        tally.sums[stands.category] += cents
        if stands.category not in (CLOSED, OMITTED):
            tally.weighted += weighted_cents(cents, stands.probability)
    return tallies, undated if facts.undated is None else facts.undated


def _period(deal: DealVersionRow, grain: str, zone: tzinfo) -> Period:
    if deal.status == WON:
        return period_of(from_micros(deal.won_at or 0), grain, zone)
    day = date.fromisoformat(deal.expected_close or "")
    return period_of(datetime(day.year, day.month, day.day, tzinfo=zone), grain, zone)


def _target_keys(targets: dict[tuple[str, str], dict[str, int]], by: str | None,
                 grain: str) -> set[tuple[date, str | None]]:
    """The (period, group) rows targets call for: an owner's or a team's periods with a target (or, not grouped,
    any owner's), so that a target with nothing yet won or expected still shows, with its whole gap."""
    if by not in (None, OWNER, TEAM):
        return set()
    scope = TEAM if by == TEAM else OWNER
    return {(first, name if by is not None else None) for (kind, name), by_label in targets.items() if kind == scope
            for first in _target_periods(by_label, grain)}


def _target_periods(by_label: dict[str, int], grain: str) -> set[date]:
    """The first days of the periods of `grain` the target labels count in: a month's in its quarter too; a
    quarter's in no month (a quarterly target is not split)."""
    firsts = set()
    for label in by_label:
        period = parse_period(label)
        if period.grain == grain:
            firsts.add(period.first)
        elif grain == "quarter":
            firsts.add(period_of(period.start, grain).first)
    return firsts


def _target(targets: dict[tuple[str, str], dict[str, int]], by: str | None, group: str | None, period: Period
            ) -> int | None:
    """The target of a row: its owner's or team's; not grouped, the sum of the owners' (None: none has one)."""
    if by in (OWNER, TEAM):
        return target_of_period(period.label, period.grain, targets.get((by, group or ""), {}))
    if by is not None:
        return None
    owners = [target_of_period(period.label, period.grain, by_label)
              for (scope, _), by_label in targets.items() if scope == OWNER]
    found = [value for value in owners if value is not None]
    return sum(found) if found else None


def _row(period: Period, group: str | None, tally: _Tally | None, target: int | None) -> ForecastRow:
    tally = tally or _Tally()
    sums = tally.sums
    return ForecastRow(period, group, tally.deals, sums[CLOSED], sums[COMMIT], sums[BEST_CASE], sums[PIPELINE],
                       sums[OMITTED], tally.weighted, target)


# --- listings ---------------------------------------------------------------------------------------


def targets_in_force(store: Store, as_of: datetime) -> list[dict[str, Any]]:
    """Every target in force at `as_of`, by scope, name and period, in its own currency (`crm target list`)."""
    t = micros(as_of)
    return [{"scope": scope, "name": name, "period": label, "amount_cents": cents, "currency": currency,
             "since": from_micros(since).isoformat()}
            for scope, name, label, cents, currency, since in store.query(
                f"SELECT scope, name, period, amount_cents, currency, valid_from FROM forecast_target_versions "
                f"WHERE {_IN_FORCE} ORDER BY scope, name, period", [t, t])]


def teams_in_force(store: Store, as_of: datetime) -> list[dict[str, Any]]:
    """Every owner's team at `as_of` ("" : none), and since when (`crm team list`)."""
    t = micros(as_of)
    return [{"owner": owner, "team": team, "since": from_micros(since).isoformat()}
            for owner, team, since in store.query(
                f"SELECT owner, team, valid_from FROM forecast_team_versions WHERE {_IN_FORCE} ORDER BY owner", [t, t])]
