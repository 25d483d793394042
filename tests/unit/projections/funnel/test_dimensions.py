"""Funnels grouped by a dimension, a property or a creation cohort, filtered by a property, and win rate and
cycle per period: the read model's answers as of any instant, and that the groups add up."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.exchange_rates import Conversion, add_sums
from domain.funnel_rules import NO_DECIDED_ITEMS, NO_LOSSES_RECORDED
from projections.funnel import FunnelFilters, FunnelQueries, FunnelReplay, FunnelReport
from projections.funnel.dimensions import PeriodRow, periods_between
from projections.rates import RateQueries
from services.application import CrmApplication
from services.commands import (ChangeCustomerProperties, ChangeDealProperties, ChangeOwner, ChangeStage, LoseDeal,
                               OpenDeal, RecordExchangeRate, RegisterCustomer, WinDeal)
from services.projection_runtime.funnel_as_of import stages_of
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at
from tests.support.equivalence import CURRENCIES, RATES, apply_history, operations


def _when(days: float) -> datetime:
    return at(days).occurred_at


@pytest.fixture
def history(crm: CrmApplication) -> dict[str, UUID]:
    """Two customers (one 大型 account); deals A (GTX, won in March), B (MG, then GTX; lost in April), C (no
    product of its own: its customer's, MG; opened in April, still open)."""
    big = crm.register_customer(RegisterCustomer("张三", "华东", "制造业", "web"), at(0))
    small = crm.register_customer(RegisterCustomer("李四", "华南", "零售", "event"), at(0))
    crm.change_customer_properties(ChangeCustomerProperties(big, {"account_size": "大型"}), at(0.5))
    crm.change_customer_properties(ChangeCustomerProperties(small, {"product": "MG"}), at(0.5))
    a = crm.open_deal(OpenDeal(big, "A", "100", owner="李娜"), at(1))
    b = crm.open_deal(OpenDeal(big, "B", "200", owner="王伟"), at(2))
    c = crm.open_deal(OpenDeal(small, "C", "300", owner="王伟"), at(35))
    crm.change_deal_properties(ChangeDealProperties(a, {"product": "GTX"}), at(1))
    crm.change_deal_properties(ChangeDealProperties(b, {"product": "MG"}), at(2))
    crm.change_stage(ChangeStage(a, "proposal", ""), at(3))
    crm.win_deal(WinDeal(a), at(10))
    crm.change_deal_properties(ChangeDealProperties(b, {"product": "GTX"}), at(20))
    crm.change_owner(ChangeOwner(b, "李娜"), at(30))
    crm.lose_deal(LoseDeal(b, "价格"), at(40))
    crm.change_customer_properties(ChangeCustomerProperties(big, {"account_size": ""}), at(45))
    return {"a": a, "b": b, "c": c, "big": big, "small": small}


@pytest.fixture
def queries(crm: CrmApplication, history: dict[str, UUID]) -> Iterator[FunnelQueries]:
    store = ReadModelStore(database_from_url("memory://"))
    projector_for(crm, store).catch_up()
    yield FunnelQueries(store)
    store.close()


def _grouped(crm: CrmApplication, queries: FunnelQueries, days: float, *by: str,
             cohort: str | None = None) -> dict[tuple[Any, ...], tuple[int, int, int]]:
    """Group key → (open, won, lost)."""
    grouped = queries.grouped("sales", stages_of(crm, "sales"), _when(days), list(by), cohort=cohort)
    return {tuple(g.key.values()): (g.report.open_items, g.report.won, g.report.lost) for g in grouped.groups}


def test_a_deals_product_is_taken_as_of_the_instant_else_its_customers(crm, queries) -> None:
    assert _grouped(crm, queries, 5, "product") == {("GTX",): (1, 0, 0), ("MG",): (1, 0, 0)}
    assert _grouped(crm, queries, 25, "product") == {("GTX",): (1, 1, 0)}  # B is GTX since day 20
    assert _grouped(crm, queries, 50, "product") == {("GTX",): (0, 1, 1), ("MG",): (1, 0, 0)}  # C: its customer's


def test_a_property_removed_leaves_its_items_without_a_value(crm, queries) -> None:
    assert _grouped(crm, queries, 41, "account_size") == {("大型",): (0, 1, 1), (None,): (1, 0, 0)}
    assert _grouped(crm, queries, 50, "account_size") == {(None,): (1, 1, 1)}


def test_grouped_by_owner_each_deal_counts_with_its_owner_then(crm, queries) -> None:
    assert _grouped(crm, queries, 25, "owner") == {("李娜",): (0, 1, 0), ("王伟",): (1, 0, 0)}
    assert _grouped(crm, queries, 50, "owner") == {("李娜",): (0, 1, 1), ("王伟",): (1, 0, 0)}


def test_cohorts_group_items_by_their_utc_creation_month_or_quarter(crm, queries) -> None:
    assert _grouped(crm, queries, 50, cohort="month") == {("2026-03",): (0, 1, 1), ("2026-04",): (1, 0, 0)}
    assert _grouped(crm, queries, 50, cohort="quarter") == {("2026-Q1",): (0, 1, 1), ("2026-Q2",): (1, 0, 0)}
    assert _grouped(crm, queries, 50, "owner", "region", cohort="month") == {
        ("李娜", "华东", "2026-03"): (0, 1, 1), ("王伟", "华南", "2026-04"): (1, 0, 0)}


def test_a_property_filter_keeps_the_items_with_that_value_then(crm, queries) -> None:
    stages = stages_of(crm, "sales")

    gtx = queries.report("sales", stages, _when(50), FunnelFilters(properties=(("product", "GTX"),)))
    mg_and_wang = queries.report("sales", stages, _when(50), FunnelFilters("王伟", properties=(("product", "MG"),)))

    assert (gtx.won, gtx.lost, gtx.open_items) == (1, 1, 0)
    assert (mg_and_wang.won, mg_and_wang.lost, mg_and_wang.open_items) == (0, 0, 1)


def test_an_unknown_group_by_or_period_is_refused(crm, queries) -> None:
    with pytest.raises(DomainError, match="lower-case letters"):
        _grouped(crm, queries, 50, "Product")
    with pytest.raises(DomainError, match="unknown period 'fortnight'"):
        _grouped(crm, queries, 50, cohort="fortnight")


def test_a_period_or_group_without_a_loss_has_no_rate_only_when_the_pipeline_records_none(crm, queries) -> None:
    before_any_loss = queries.periods("sales", "month", _when(0), _when(20))
    by_owner = queries.periods_by("sales", "month", _when(0), _when(70), FunnelFilters(), ["owner"])

    assert [(r.period, r.won, r.lost, r.win_rate, r.win_rate_note) for r in before_any_loss][0] == \
        ("2026-03", 1, 0, None, NO_LOSSES_RECORDED)
    # 李娜 won A in March and lost nothing then: 100 %, as B's loss in April shows the data records losses
    assert [(r.period, r.won, r.lost, r.win_rate) for r in by_owner[("李娜",)]][0] == ("2026-03", 1, 0, 1.0)


def test_periods_give_win_rate_and_cycle_of_the_items_decided_in_each_utc_month(crm, queries) -> None:
    rows = queries.periods("sales", "month", _when(0), _when(70))

    # March won without a loss: 100 %, because the pipeline does record losses (April's); only a pipeline
    # without any lost item gets no rate (funnel_rules.win_rate; the test after this one)
    assert [(r.period, r.won, r.lost, r.won_value_cents, r.win_rate, r.win_rate_note) for r in rows] == [
        ("2026-03", 1, 0, 10000, 1.0, None), ("2026-04", 0, 1, 0, 0.0, None),
        ("2026-05", 0, 0, 0, None, NO_DECIDED_ITEMS)]
    assert rows[0].average_cycle_days == pytest.approx(9.0)  # A: opened day 1, won day 10
    assert queries.first_decision("sales") == _when(10)
    assert [r.period for r in queries.periods("sales", "quarter", _when(0), _when(70))] == ["2026-Q1", "2026-Q2"]


def test_periods_per_owner_and_product_count_each_items_decision_with_its_values_at_the_end(crm, queries) -> None:
    by_owner = queries.periods_by("sales", "month", _when(0), _when(70), FunnelFilters(), ["owner"])
    by_product = queries.periods_by("sales", "quarter", _when(0), _when(70), FunnelFilters(), ["product"])

    assert {key: [(r.period, r.won, r.lost) for r in rows] for key, rows in by_owner.items()} == {
        ("李娜",): [("2026-03", 1, 0), ("2026-04", 0, 1), ("2026-05", 0, 0)]}  # B is 李娜's since day 30
    assert {key: [(r.period, r.won, r.lost, r.win_rate) for r in rows] for key, rows in by_product.items()} == {
        ("GTX",): [("2026-Q1", 1, 0, 1.0), ("2026-Q2", 0, 1, 0.0)]}  # Q1 without a loss: the pipeline records one
    with pytest.raises(DomainError, match="unknown period"):
        queries.periods_by("sales", "fortnight", _when(0), _when(70), FunnelFilters(), [])


def test_periods_between_two_instants_are_the_utc_periods_they_meet() -> None:
    utc = timezone.utc
    starts = periods_between(datetime(2025, 11, 15, tzinfo=utc), datetime(2026, 4, 1, tzinfo=utc), "quarter")
    assert [p.first.isoformat() for p in starts] == ["2025-10-01", "2026-01-01"]
    before_1970 = periods_between(datetime(1969, 12, 31, 23, tzinfo=utc), datetime(1970, 1, 2, tzinfo=utc), "month")
    assert [p.first.isoformat() for p in before_1970] == ["1969-12-01", "1970-01-01"]


def test_the_replay_groups_and_filters_by_properties_as_the_read_model(crm, queries) -> None:
    replay = FunnelReplay(_when(25))
    for _, event in crm.read_log():
        replay.handle(event)
    stages = stages_of(crm, "sales")

    grouped = queries.grouped("sales", stages, _when(25), ["product", "owner"])
    assert replay.grouped("sales", stages, ["product", "owner"]) == {
        tuple(g.key.values()): g.report for g in grouped.groups}
    gtx = FunnelFilters(properties=(("product", "GTX"),))
    assert replay.report("sales", stages, gtx) == queries.report("sales", stages, _when(25), gtx)


# --- property: the groups are the filtered funnels, and add up to the funnel of all items ---------------------
#
# The histories hold deals in CNY, USD and BRL and rates recorded at random dates, quoted in CNY (sometimes EUR),
# plus up to six more in any direction (`more_rates`), and the report is asked in CNY, EUR or USD. Each
# group, converted with the rates of a plain report then, must equal the filtered report. What adds up over
# groups is kept per currency (a conversion with no rates leaves every other currency apart, exactly); the
# converted figures then are those per-currency sums converted, and add up to the unfiltered converted figure
# but for rounding (half a cent per group and converted currency).

REPORTING = ("CNY", "EUR", "USD")
FILTER_OF = {"owner": lambda v: FunnelFilters(owner=v), "region": lambda v: FunnelFilters(region=v),
             "channel": lambda v: FunnelFilters(channel=v), "campaign": lambda v: FunnelFilters(campaign_id=UUID(v)),
             "product": lambda v: FunnelFilters(properties=(("product", v),)),
             "account_size": lambda v: FunnelFilters(properties=(("account_size", v),))}


def _sums(converted_cents: int, unconverted: dict[str, int], reporting: str) -> dict[str, int]:
    """A value as per-currency sums: what is in `reporting` (all of it when nothing had a rate) and the rest."""
    return add_sums({reporting: converted_cents} if converted_cents else {}, unconverted)


def _values(report: FunnelReport) -> list[tuple[int, dict[str, int]]]:
    """(converted cents, unconverted per currency) of each open stage, then of the items won."""
    won_unconverted = dict(report.unconverted)
    for row in report.rows:
        add_sums(won_unconverted, row.unconverted, -1)
    return [(row.value_cents, row.unconverted) for row in report.rows] + [(report.won_value_cents, won_unconverted)]


def _per_currency(apart: FunnelReport) -> list[dict[str, int]]:
    """`_values` of a report converted with no rates: the exact per-currency sums."""
    return [_sums(cents, unconverted, apart.currency) for cents, unconverted in _values(apart)]


def _converted(sums: list[dict[str, int]], money: Conversion) -> list[tuple[int, dict[str, int]]]:
    return [(value.cents, value.unconverted) for value in map(money.convert, sums)]


def _totals(apart: list[FunnelReport]) -> tuple[Any, ...]:
    """What adds up over groups (of reports with every currency apart): items, values per currency, reached,
    advanced, lost and still open per stage, won, lost, won values per currency, stuck items with their amount
    and currency, and their total."""
    stages = range(len(apart[0].rows)) if apart else range(0)
    values = [_per_currency(r) for r in apart]
    return (
        [sum(r.rows[i].items for r in apart) for i in stages],
        [functools.reduce(add_sums, (v[i] for v in values), {}) for i in range(len(stages) + 1)] if apart else [],
        [tuple(sum(getattr(r.rows[i], name) for r in apart) for name in ("reached", "advanced", "lost", "still_open"))
         for i in stages],
        sum(r.won for r in apart), sum(r.lost for r in apart),
        sorted((str(s.item_id), s.currency, s.amount_cents) for r in apart for s in r.stuck),
        sum(r.stuck_total for r in apart),
    )


def _adds_up_converted(groups: list[FunnelReport], everything: FunnelReport, money: Conversion) -> bool:
    """The groups' converted values sum to the unfiltered one within rounding; what is unconverted, exactly."""
    rounding = (len(groups) + 1) * len(money.rates) / 2
    each = [_values(g) for g in groups]
    for i, (cents, unconverted) in enumerate(_values(everything)):
        if abs(sum(v[i][0] for v in each) - cents) > rounding:
            return False
        if functools.reduce(add_sums, (v[i][1] for v in each), {}) != unconverted:
            return False
    return True


def _empty(report: FunnelReport) -> bool:
    return not any(row.reached or row.items for row in report.rows) and not report.won and not report.lost


# more rates than the histories' few: (currency, quote, rate, day), in every direction the reports ask for
more_rates = st.lists(st.tuples(st.sampled_from(CURRENCIES), st.sampled_from(REPORTING), st.sampled_from(RATES),
                                st.integers(-10, 150)), max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, rates_=more_rates, reporting=st.sampled_from(REPORTING))
def test_grouped_funnels_equal_the_filtered_ones_value_by_value_and_sum_to_the_unfiltered(
        ops: list, rates_: list[tuple[str, str, str, int]], reporting: str) -> None:
    app = CrmApplication(database_from_url("memory://"))
    app.ensure_default_pipelines()
    apply_history(app, ops, on_sync=lambda: None)
    for currency, quote, rate, day in rates_:
        if currency != quote:
            app.record_exchange_rate(RecordExchangeRate(currency, rate, _when(day).date(), quote=quote), at(day))
    store = ReadModelStore(database_from_url("memory://"))
    projector_for(app, store).catch_up()
    queries, rates, apart = FunnelQueries(store), RateQueries(store), Conversion(reporting)
    for pipeline in ("sales", "marketing"):
        stages = stages_of(app, pipeline)
        for days in (10, 60, 150):
            as_of = _when(days)
            money = rates.conversion(reporting, as_of)
            everything = queries.report(pipeline, stages, as_of, stuck_days=3, money=money)
            everything_apart = queries.report(pipeline, stages, as_of, stuck_days=3, money=apart)
            assert {s.currency for s in everything.stuck} <= ({"", } if pipeline == "marketing" else set(CURRENCIES))
            for by in (*FILTER_OF, "cohort"):
                _check_groups(queries, pipeline, stages, as_of, by, money, apart, everything, everything_apart)
        _check_periods(queries, pipeline, rates.conversion(reporting, _when(160)), apart)
    store.close()
    app.close()


def _check_groups(queries: FunnelQueries, pipeline: str, stages: list[tuple[str, str]], as_of: datetime, by: str,
                  money: Conversion, apart: Conversion, everything: FunnelReport,
                  everything_apart: FunnelReport) -> None:
    """Each group is the filtered funnel, converted alike; the groups add up, per currency and converted."""
    by_, cohort = ([], "month") if by == "cohort" else ([by], None)
    grouped = queries.grouped(pipeline, stages, as_of, by_, stuck_days=3, cohort=cohort, money=money)
    grouped_apart = queries.grouped(pipeline, stages, as_of, by_, stuck_days=3, cohort=cohort, money=apart)
    assert [g.key for g in grouped.groups] == [g.key for g in grouped_apart.groups], by
    assert (grouped.currency, grouped.rates) == (everything.currency, everything.rates)
    reports, reports_apart = [g.report for g in grouped.groups], [g.report for g in grouped_apart.groups]
    if _empty(everything):
        assert not reports, by
        return
    assert _totals(reports_apart) == _totals([everything_apart]), by
    assert _adds_up_converted(reports, everything, money), by
    assert grouped.unconverted == everything.unconverted, by
    for group, group_apart in zip(reports, reports_apart):
        assert _values(group) == _converted(_per_currency(group_apart), money), by
    for group in grouped.groups:
        value = group.key[by]
        if by in FILTER_OF and value is not None:
            filtered = queries.report(pipeline, stages, as_of, FILTER_OF[by](value), stuck_days=3, money=money)
            assert group.report == filtered, (by, value)


def _check_periods(queries: FunnelQueries, pipeline: str, money: Conversion, apart: Conversion) -> None:
    """Per period, the groups' decisions are the filtered ones (converted alike) and add up to all of them: per
    currency exactly, converted but for rounding."""
    start, end = _when(-10), _when(160)
    everything = queries.periods(pipeline, "month", start, end, money=money)
    everything_apart = queries.periods(pipeline, "month", start, end, money=apart)
    for by in FILTER_OF:
        groups = queries.periods_by(pipeline, "month", start, end, FunnelFilters(), [by], money)
        groups_apart = queries.periods_by(pipeline, "month", start, end, FunnelFilters(), [by], apart)
        assert list(groups) == list(groups_apart), by
        for (value,), rows in groups.items():
            won = [_won_sums(r) for r in groups_apart[(value,)]]
            assert [(r.won_value_cents, r.unconverted) for r in rows] == _converted(won, money), (by, value)
            if value is not None:
                assert rows == queries.periods(pipeline, "month", start, end, FILTER_OF[by](value), money), (by, value)
        assert _period_totals(list(groups_apart.values()), len(everything)) == \
            _period_totals([everything_apart], len(everything)), by
        rounding = (len(groups) + 1) * len(money.rates) / 2
        for i, row in enumerate(everything):
            assert abs(sum(rows[i].won_value_cents for rows in groups.values()) - row.won_value_cents) <= rounding
            assert functools.reduce(add_sums, (rows[i].unconverted for rows in groups.values()), {}) \
                == row.unconverted, by


def _won_sums(row: PeriodRow) -> dict[str, int]:
    return _sums(row.won_value_cents, row.unconverted, row.currency)


def _period_totals(groups: list[list[PeriodRow]], periods: int) -> list[tuple[int, int, dict[str, int]]]:
    """Per period, over groups (with every currency apart): won, lost, won values per currency."""
    return [(sum(rows[i].won for rows in groups), sum(rows[i].lost for rows in groups),
             functools.reduce(add_sums, (_won_sums(rows[i]) for rows in groups), {})) for i in range(periods)]
