"""On PostgreSQL too, more stuck items than one statement of SQLite before 3.32 may bind (999) are all found, by
statements of at most 999 parameters each, as the reference scan finds them
(the SQLite twin: tests/unit/projections/funnel/test_many_stuck.py)."""

from __future__ import annotations

from contextlib import closing
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

OLD_LIMIT, STUCK = 999, 1_200


def test_more_stuck_items_than_one_statement_may_bind_are_all_found(crm_pg: CrmApplication,
                                                                     pg_database: str) -> None:
    with closing(ReadModelStore(database_from_url(pg_database))) as store:
        projector_for(crm_pg, store, ["funnel"]).catch_up()
        as_of = T0 + timedelta(days=100)
        planted = plant_stuck(store, STUCK, "sales", "proposal", micros(as_of))
        counting, stages = CountingStore(store), stages_of(crm_pg, "sales")

        report = FunnelQueries(counting).report("sales", stages, as_of, stuck_days=30)
        reference = FunnelQueries(store)._stuck("sales", stages, micros(as_of), FunnelFilters(),
                                                30 * 86_400_000_000, scanned=True)

    assert report.stuck_total == STUCK and {s.item_id for s in report.stuck} == set(planted)
    assert sorted(s.item_id for s in reference) == sorted(s.item_id for s in report.stuck)
    assert counting.most <= OLD_LIMIT
