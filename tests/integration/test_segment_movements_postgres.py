"""Movements between two instants counted in SQL answer on PostgreSQL as on SQLite, from at most 12 rows
(tests/unit/projections/segments/test_movements_bounded.py)."""

from __future__ import annotations

from contextlib import closing

from services.application import CrmApplication
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.unit.projections.segments.test_movements_bounded import counted_in_sql


def test_movements_are_counted_in_sql_one_row_per_pair_of_tiers(crm_pg: CrmApplication, pg_database: str) -> None:
    with closing(ReadModelStore(database_from_url(pg_database))) as store:
        projector_for(crm_pg, store, ["segments"]).catch_up()
        counted_in_sql(store)
