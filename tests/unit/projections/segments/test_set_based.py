"""The segments' set-based fold (`projections.segments.set_based`): as text, it reads the events the handlers
handle and fills every table; run by the bulk path on SQLite, it writes the handlers' very rows for a history
walking through every rule of the segments and for random histories, and where the handlers stop, so does it.

Rules walked: a purchase in USD before any rate, converted once a rate for an earlier date is recorded later
(log order ≠ business time), a correction of that rate, an amount changed before a win, a win reopened and
lost and won again, a loss stored in its release-1 shape (upcast), a purchase in a currency with no rate (kept
apart), a deal before its customer's registration, a customer forgotten, tiers that end by the mere passing
of time (ages 30/90/180/365 days), five purchases in the window, ties of preferred pipeline, touches, and
properties set, unchanged, removed and set again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from domain.deal import Deal
from projections.segments import SegmentsReadModel
from projections.segments.set_based import _EVENTS, STEPS, TABLES
from services.application import CrmApplication
from services.bulk.duckdb_rebuild import bulk_build
from services.commands.pipelines import DefinePipeline, Stage
from services.projection_runtime.projector import Projector, read_positions
from services.projection_runtime.registry import projector_for
from services.commands import (ChangeAmount, ChangeCustomerProperties, ForgetCustomer, LogTouch, LoseDeal, OpenDeal,
                               RecordExchangeRate, RegisterCustomer, ReopenDeal, WinDeal)
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at
from tests.support.bulk_equivalence import assert_bulk_equals_handlers, differences, run_history, snapshot
from tests.support.equivalence import operations
from tests.support.schema_evolution import store_in_old_shape


def test_the_fold_reads_the_events_the_handlers_handle_and_fills_every_table() -> None:
    model = SegmentsReadModel()
    assert set(_EVENTS) == {cls.__qualname__ for cls in model.handlers()}
    assert set(TABLES) == {table.name for table in model.tables}
    assert set(TABLES.values()) <= {name for name, _ in STEPS}


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[tuple[CrmApplication, ReadModelStore]]:
    database = database_from_url(f"sqlite:///{tmp_path / 'crm.db'}")
    app, store = CrmApplication(database), ReadModelStore(database)
    app.ensure_default_pipelines(at(-400))
    yield app, store
    store.close()
    app.close()


def _rate(app: CrmApplication, currency: str, rate: str, day: float, recorded: float) -> None:
    app.record_exchange_rate(RecordExchangeRate(currency, rate, at(day).occurred_at.date(), quote="CNY"), at(recorded))


def _won(app: CrmApplication, customer: object, amount: str, day: float, currency: str = "CNY",
         pipeline: str = "sales") -> object:
    deal = app.open_deal(OpenDeal(customer, "项目", amount, currency=currency, pipeline=pipeline, owner="李娜"), at(day))
    app.win_deal(WinDeal(deal), at(day + 1))
    return deal


def _buyer(app: CrmApplication) -> object:
    """USD before its rate, a rate recorded later for an earlier date and corrected; amount changed; won,
    reopened, lost (old shape), reopened, won; a currency with no rate; five purchases in two pipelines (the
    most, then a tie); touches; properties."""
    customer = app.register_customer(RegisterCustomer("客户", "华东", "制造业", "web"), at(0))
    usd = app.open_deal(OpenDeal(customer, "美元", "1234.565", currency="USD", owner="李娜"), at(1))
    app.change_amount(ChangeAmount(usd, "80000.005"), at(2))
    app.win_deal(WinDeal(usd), at(3))
    app.reopen_deal(ReopenDeal(usd, "重谈"), at(40))
    lost = app.get(Deal, usd)
    lost.lose("价格", at(41), "金蝶")
    store_in_old_shape(app, lost.collect_events()[0], drop=("competitor",))
    app.reopen_deal(ReopenDeal(usd, "再谈"), at(50))
    app.win_deal(WinDeal(usd), at(51))
    _rate(app, "USD", "7.1", -1, recorded=60)  # recorded after the purchases it converts
    _rate(app, "USD", "7.25", -1, recorded=61)  # corrects it
    _rate(app, "USD", "0.000000001", 45, recorded=62)  # the smallest rate: its text is 1E-9
    _rate(app, "EUR", "7.9", -1, recorded=62)  # no purchase in EUR
    app.define_pipeline(DefinePipeline("renewal", "续约", [Stage("ask", "询问"), Stage("sign", "签约")]), at(75))
    _won(app, customer, "300", 70, currency="BRL", pipeline="renewal")  # no rate into CNY: kept apart
    _won(app, customer, "20000", 80, pipeline="renewal")
    for day in (90, 95, 100):
        _won(app, customer, "30000", day, pipeline="renewal" if day == 95 else "sales")
    for days, channel in ((5, "phone"), (6, "email"), (7, "phone")):
        app.log_touch(LogTouch(customer, channel=channel, direction="outbound", summary="电话"), at(days))
    for day, changes in ((11, {"size": "大"}), (12, {"size": "大", "age": "老"}), (13, {"size": ""}), (14, {"size": "小"})):
        app.change_customer_properties(ChangeCustomerProperties(customer, changes), at(day))  # type: ignore[arg-type]
    return customer


def _others(app: CrmApplication) -> None:
    """A deal opened before its customer registered; a customer forgotten with a purchase and an open deal; a
    deal won and reopened the same instant; one big purchase (high value) that ages through every tier."""
    late = app.register_customer(RegisterCustomer("后来", "华南", "零售", "phone"), at(20))
    app.open_deal(OpenDeal(late, "先有项目", "10", owner="王伟"), at(10))
    gone = app.register_customer(RegisterCustomer("遗忘", "", "零售", "web"), at(0))
    _won(app, gone, "60000", 5)
    app.open_deal(OpenDeal(gone, "未结", "5"), at(8))
    app.forget_customer(ForgetCustomer(gone), at(30))
    instant = app.register_customer(RegisterCustomer("瞬间", "华东", "零售", "web"), at(0))
    deal = _won(app, instant, "100", 1)
    app.reopen_deal(ReopenDeal(deal, "撤回"), at(2))
    app.lose_deal(LoseDeal(deal, "价格"), at(2))
    whale = app.register_customer(RegisterCustomer("大客户", "华东", "零售", "web"), at(0))
    _won(app, whale, "2000000", 1)


def test_bulk_equals_the_handlers_on_every_segments_rule_on_sqlite(
        sqlite: tuple[CrmApplication, ReadModelStore]) -> None:
    app, store = sqlite
    customer = _buyer(app)
    _others(app)
    tables = assert_bulk_equals_handlers(app, store, [SegmentsReadModel()])
    intervals = tables["segments_intervals"]
    assert {row[4] for row in intervals} == {"high_value", "potential", "ordinary"}
    assert {row[13] for row in intervals} >= {None, '{"BRL":30000}'}  # kept apart, by currency
    assert {row[12] for row in intervals if row[0] == str(customer)} >= {"sales", "renewal"}
    assert len(tables["segments_rates"]) == 2 and len(tables["segments_touches"]) == 3
    assert {(row[1], row[3]) for row in tables["segments_current_properties"]} == {("size", "小"), ("age", "老")}


def test_the_handlers_incremental_intervals_equal_the_bulk_ones_but_for_superseded_rows(
        sqlite: tuple[CrmApplication, ReadModelStore]) -> None:
    """Caught up a few events at a time, the handlers leave superseded rows where a timeline shrank; the live
    rows are the bulk path's."""
    app, store = sqlite
    _buyer(app)
    _others(app)
    model = SegmentsReadModel()
    Projector(app, store, [model]).catch_up(limit=3)
    (superseded,), = store.query("SELECT count(*) FROM segments_intervals WHERE valid_from = 0 AND valid_to = 0")
    assert superseded > 0
    incremental = snapshot(store, [model])
    bulk_build(app, store, ["segments"])
    assert not differences(incremental, snapshot(store, [model]))


def _stopped(app: CrmApplication, store: ReadModelStore) -> tuple[dict[str, int], list[tuple[object, ...]]]:
    return read_positions(store, ["segments"]), store.query("SELECT position, event_type FROM projection_failures")


def _passed_by(store: ReadModelStore, position: int, event_type: str) -> None:
    """`crm projections resume segments --skip` at `position`: rebuilds pass the event by too."""
    with store.transaction() as cursor:
        cursor.execute("INSERT INTO projection_skips (name, position, aggregate_id, event_type, reason, skipped_at) "
                       "VALUES ('segments', ?, 'x', ?, 'test', '')", (position, event_type))


def test_a_deal_changed_before_its_opening_stops_the_segments_in_bulk_as_by_handlers(
        sqlite: tuple[CrmApplication, ReadModelStore]) -> None:
    app, store = sqlite
    customer = app.register_customer(RegisterCustomer("客户", "华东", "制造业", "web"), at(0))
    deal = app.open_deal(OpenDeal(customer, "项目", "10", owner="李娜"), at(1))
    opened_at = app.event_count()
    app.win_deal(WinDeal(deal), at(2))
    projector_for(app, store, ["segments"])  # the tables
    _passed_by(store, opened_at, "Deal.Opened")
    bulk_build(app, store, ["segments"])
    in_bulk = _stopped(app, store)
    projector_for(app, store, ["segments"]).rebuild()
    assert in_bulk == _stopped(app, store)
    assert in_bulk[1] == [(opened_at + 1, "Deal.Won")]


def test_a_customer_forgotten_never_registered_stops_the_segments_in_bulk_as_by_handlers(
        sqlite: tuple[CrmApplication, ReadModelStore]) -> None:
    app, store = sqlite
    customer = app.register_customer(RegisterCustomer("客户", "华东", "制造业", "web"), at(0))
    app.forget_customer(ForgetCustomer(customer), at(1))
    projector_for(app, store, ["segments"])
    _passed_by(store, app.event_count() - 1, "Customer.Registered")
    bulk_build(app, store, ["segments"])
    in_bulk = _stopped(app, store)
    projector_for(app, store, ["segments"]).rebuild()
    assert in_bulk == _stopped(app, store)
    assert in_bulk[0]["segments"] < app.event_count() and in_bulk[1]


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=operations, pipelines_first=st.booleans())
def test_bulk_equals_the_handlers_on_random_histories_on_sqlite(tmp_path_factory: pytest.TempPathFactory, ops: list,
                                                                pipelines_first: bool) -> None:
    """The random histories of tests/support/equivalence.py (rates at random dates, forgotten customers, deals
    lost, reopened and revised; PostgreSQL: tests/integration/test_bulk_rebuild_postgres.py)."""
    database = database_from_url(f"sqlite:///{tmp_path_factory.mktemp('segments') / 'crm.db'}")
    app, store = CrmApplication(database), ReadModelStore(database)
    try:
        run_history(app, ops, pipelines_first)
        assert_bulk_equals_handlers(app, store, [SegmentsReadModel()])
    finally:
        store.close()
        app.close()
