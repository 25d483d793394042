"""Funnels grouped by a dimension, a property or a creation cohort, filtered by a property, and win rate and
cycle per period: the read model's answers as of any instant, and that the groups add up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings

from domain.errors import DomainError
from projections.funnel import FunnelFilters, FunnelQueries, FunnelReplay, FunnelReport
from projections.funnel.dimensions import periods_between
from services.application import CrmApplication
from services.commands import (ChangeCustomerProperties, ChangeDealProperties, ChangeOwner, ChangeStage, LoseDeal,
                               OpenDeal, RegisterCustomer, WinDeal)
from services.projection_runtime.funnel_as_of import stages_of
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at
from tests.support.equivalence import apply_history, operations


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
    with pytest.raises(DomainError, match="unknown period 'week'"):
        _grouped(crm, queries, 50, cohort="week")


def test_periods_give_win_rate_and_cycle_of_the_items_decided_in_each_utc_month(crm, queries) -> None:
    rows = queries.periods("sales", "month", _when(0), _when(70))

    assert [(r.period, r.won, r.lost, r.won_value_cents, r.win_rate) for r in rows] == [
        ("2026-03", 1, 0, 10000, 1.0), ("2026-04", 0, 1, 0, 0.0), ("2026-05", 0, 0, 0, None)]
    assert rows[0].average_cycle_days == pytest.approx(9.0)  # A: opened day 1, won day 10
    assert queries.first_decision("sales") == _when(10)
    assert [r.period for r in queries.periods("sales", "quarter", _when(0), _when(70))] == ["2026-Q1", "2026-Q2"]


def test_periods_per_owner_and_product_count_each_items_decision_with_its_values_at_the_end(crm, queries) -> None:
    by_owner = queries.periods_by("sales", "month", _when(0), _when(70), FunnelFilters(), ["owner"])
    by_product = queries.periods_by("sales", "quarter", _when(0), _when(70), FunnelFilters(), ["product"])

    assert {key: [(r.period, r.won, r.lost) for r in rows] for key, rows in by_owner.items()} == {
        ("李娜",): [("2026-03", 1, 0), ("2026-04", 0, 1), ("2026-05", 0, 0)]}  # B is 李娜's since day 30
    assert {key: [(r.period, r.won, r.lost, r.win_rate) for r in rows] for key, rows in by_product.items()} == {
        ("GTX",): [("2026-Q1", 1, 0, 1.0), ("2026-Q2", 0, 1, 0.0)]}
    with pytest.raises(DomainError, match="unknown period"):
        queries.periods_by("sales", "week", _when(0), _when(70), FunnelFilters(), [])


def test_periods_between_two_instants_are_the_utc_periods_they_meet() -> None:
    utc = timezone.utc
    starts = periods_between(datetime(2025, 11, 15, tzinfo=utc), datetime(2026, 4, 1, tzinfo=utc), "quarter")
    assert [d.isoformat() for d in starts] == ["2025-10-01", "2026-01-01"]
    before_1970 = periods_between(datetime(1969, 12, 31, 23, tzinfo=utc), datetime(1970, 1, 2, tzinfo=utc), "month")
    assert [d.isoformat() for d in before_1970] == ["1969-12-01", "1970-01-01"]


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

FILTER_OF = {"owner": lambda v: FunnelFilters(owner=v), "region": lambda v: FunnelFilters(region=v),
             "channel": lambda v: FunnelFilters(channel=v), "campaign": lambda v: FunnelFilters(campaign_id=UUID(v)),
             "product": lambda v: FunnelFilters(properties=(("product", v),)),
             "account_size": lambda v: FunnelFilters(properties=(("account_size", v),))}


def _totals(reports: list[FunnelReport]) -> tuple[Any, ...]:
    """What adds up over groups: items and value per stage, reached, won, lost, won value, stuck items."""
    return (
        [sum(r.rows[i].items for r in reports) for i in range(len(reports[0].rows))] if reports else [],
        [sum(r.rows[i].value_cents for r in reports) for i in range(len(reports[0].rows))] if reports else [],
        [sum(r.rows[i].reached for r in reports) for i in range(len(reports[0].rows))] if reports else [],
        sum(r.won for r in reports), sum(r.lost for r in reports), sum(r.won_value_cents for r in reports),
        sorted(str(s.item_id) for r in reports for s in r.stuck),
    )


def _empty(report: FunnelReport) -> bool:
    return not any(row.reached or row.items for row in report.rows) and not report.won and not report.lost


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_grouped_funnels_equal_the_filtered_ones_value_by_value_and_sum_to_the_unfiltered(ops: list) -> None:
    app = CrmApplication(database_from_url("memory://"))
    app.ensure_default_pipelines()
    apply_history(app, ops, on_sync=lambda: None)
    store = ReadModelStore(database_from_url("memory://"))
    projector_for(app, store).catch_up()
    queries = FunnelQueries(store)
    for pipeline in ("sales", "marketing"):
        stages = stages_of(app, pipeline)
        for days in (10, 60, 150):
            as_of = _when(days)
            everything = queries.report(pipeline, stages, as_of, stuck_days=3)
            for by in (*FILTER_OF, "cohort"):
                grouped = queries.grouped(pipeline, stages, as_of, [] if by == "cohort" else [by], stuck_days=3,
                                          cohort="month" if by == "cohort" else None)
                reports = [g.report for g in grouped.groups]
                assert _totals(reports) == _totals([everything]) or (_empty(everything) and not reports), by
                for group in grouped.groups:
                    value = group.key[by]
                    if by in FILTER_OF and value is not None:
                        filtered = queries.report(pipeline, stages, as_of, FILTER_OF[by](value), stuck_days=3)
                        assert group.report == filtered, (by, value)
        _check_periods(queries, pipeline)
    store.close()
    app.close()


def _check_periods(queries: FunnelQueries, pipeline: str) -> None:
    """Per period, the groups' decisions are the filtered ones and add up to all of them."""
    start, end = _when(-10), _when(160)
    everything = queries.periods(pipeline, "month", start, end)
    for by in FILTER_OF:
        groups = queries.periods_by(pipeline, "month", start, end, FunnelFilters(), [by])
        for (value,), rows in groups.items():
            if value is not None:
                assert rows == queries.periods(pipeline, "month", start, end, FILTER_OF[by](value)), (by, value)
        summed = [(sum(rows[i].won for rows in groups.values()), sum(rows[i].lost for rows in groups.values()),
                   sum(rows[i].won_value_cents for rows in groups.values())) for i in range(len(everything))]
        assert summed == [(r.won, r.lost, r.won_value_cents) for r in everything], by
