"""The stuck items' query binds at most 999 parameters per statement, however many items are stuck: SQLite
before 3.32 refuses more (the PostgreSQL twin: tests/integration/test_funnel_stuck_postgres.py)."""

import sqlite3
from datetime import timedelta

from projections.funnel import FunnelFilters, FunnelQueries
from projections.tables import micros
from services.application import CrmApplication
from services.projection_runtime.funnel_as_of import stages_of
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0
from tests.support.many_stuck import CountingStore, plant_stuck

OLD_LIMIT = 999  # host parameters per statement, SQLite before 3.32
STUCK = 1_200  # over 999 ids, and over the 500 per chunk the query once bound twice


def test_more_stuck_items_than_one_statement_may_bind_are_all_found(crm: CrmApplication) -> None:
    store = ReadModelStore(database_from_url("memory://"))
    projector_for(crm, store, ["funnel"]).catch_up()
    store._sqlite.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, OLD_LIMIT)  # as SQLite before 3.32
    as_of = T0 + timedelta(days=100)
    planted = plant_stuck(store, STUCK, "sales", "proposal", micros(as_of))
    counting = CountingStore(store)
    stages = stages_of(crm, "sales")

    report = FunnelQueries(counting).report("sales", stages, as_of, stuck_days=30)
    grouped = FunnelQueries(counting).grouped("sales", stages, as_of, ["owner"], stuck_days=30)

    assert report.stuck_total == STUCK and {s.item_id for s in report.stuck} == set(planted)
    assert [g.report.stuck_total for g in grouped.groups] == [STUCK]
    reference = FunnelQueries(store)._stuck("sales", stages, micros(as_of), FunnelFilters(), 30 * 86_400_000_000,
                                            scanned=True)
    assert sorted(s.item_id for s in reference) == sorted(s.item_id for s in report.stuck)
    assert counting.most <= OLD_LIMIT
    store.close()
