"""Property: one period's forecast read by index (won deals by won_at, open ones by close date, the undated
counted by span class: `_Facts.of_period`) is the forecast the query before it gave, which read every deal in
force at T and picked the period in Python — on random histories, at random instants, every grain, grouping
and period, in UTC and in Asia/Shanghai (where a quarter ends at 16:00 UTC)."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings

from domain.base import Meta
from domain.periods import UTC
from projections.forecast import ForecastQueries, ForecastReadModel
from projections.forecast.queries import BY, _Facts, _report, forecast_period
from projections.rates import RateQueries, RatesReadModel
from projections.tables import micros
from services.application import CrmApplication
from services.projection_runtime.projector import Projector
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0
from tests.support.equivalence import PIPELINES_DEFINED, apply_history, batch_sizes, instants, operations

ZONES = (UTC, ZoneInfo("Asia/Shanghai"))


def _scanned(store: ReadModelStore, as_of, grain, by, label, zone, money) -> dict:
    """The report as the query before `of_period` made it: every deal in force at T, the period picked after."""
    only = forecast_period(label, zone)
    return _report(_Facts.load(store, micros(as_of)), as_of, only.grain, by, only, zone, money).to_dict()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, days=instants, batch=batch_sizes)
def test_a_periods_forecast_by_index_is_the_scanned_one(ops: list, days: list[int], batch: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        database = database_from_url(f"sqlite:///{Path(folder) / 'crm.db'}")
        app = CrmApplication(database)
        app.ensure_default_pipelines(Meta(occurred_at=PIPELINES_DEFINED))
        store = ReadModelStore(database)
        follower = Projector(app, store, [ForecastReadModel(), RatesReadModel()])
        apply_history(app, ops, on_sync=lambda: follower.catch_up(limit=batch))
        follower.catch_up()
        queries, checked = ForecastQueries(store), 0
        for day in days:
            as_of = T0 + timedelta(days=day, hours=day % 7)
            money = RateQueries(store).conversion(app.reporting_currency, as_of)
            for zone in ZONES:
                for grain in ("month", "quarter"):
                    everything = queries.report(as_of, grain, None, None, zone, money)
                    labels = {row.period.label for row in everything.rows} | {"2031-Q4" if grain == "quarter" else "2031-12"}
                    for label in sorted(labels):
                        for by in (None, *BY):
                            found = queries.report(as_of, grain, by, label, zone, money).to_dict()
                            assert found == _scanned(store, as_of, grain, by, label, zone, money), (label, by, zone)
                            checked += 1
        assert checked
        store.close()
        app.close()


def test_an_undated_deal_is_counted_while_a_version_that_ended_later_was_in_force() -> None:
    """A version's span class bounds how long before T it may have begun: a 10-day version begun 9.5 days before
    T is found (a window a quarter as long would miss it)."""
    from services.commands import ChangeOwner, OpenDeal, RegisterCustomer

    database = database_from_url("memory://")
    app = CrmApplication(database)
    app.ensure_default_pipelines(Meta(occurred_at=PIPELINES_DEFINED))
    customer = app.register_customer(RegisterCustomer("甲公司", "华东", "制造业", "web"), Meta(occurred_at=T0))
    deal = app.open_deal(OpenDeal(customer, "一期", "1000", owner="李娜"), Meta(occurred_at=T0))
    app.change_owner(ChangeOwner(deal, "王伟"), Meta(occurred_at=T0 + timedelta(days=10)))
    store = ReadModelStore(database)
    Projector(app, store, [ForecastReadModel()]).catch_up()
    for day in (9.5, 10.5):
        report = ForecastQueries(store).report(T0 + timedelta(days=day), period="2031-Q1")
        assert report.undated == 1
    assert ForecastQueries(store).report(T0 - timedelta(days=1), period="2031-Q1").undated == 0
