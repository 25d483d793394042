"""The bulk rebuild's tables built beside the current ones on two connections (services/bulk/table_lanes.py),
on PostgreSQL: put in place with their keys and index names, nothing left beside; a build that fails leaves
the current tables and position as they were, and nothing beside them."""

from __future__ import annotations

import pytest

from services.application import CrmApplication
from services.bulk import table_lanes
from services.bulk.duckdb_rebuild import bulk_build
from services.demo.sample_data import DemoHistory, DemoSettings
from services.projection_runtime.projector import read_positions
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

_INDEXES = ("SELECT tablename, indexname FROM pg_indexes WHERE schemaname = current_schema() "
            "AND left(tablename, 7) = 'funnel_' ORDER BY 1, 2")
_BESIDE = (f"SELECT count(*) FROM pg_tables WHERE right(tablename, {len(table_lanes.BESIDE)}) = "
           f"'{table_lanes.BESIDE}'")


def test_tables_built_beside_take_the_places_and_names_of_the_current_ones(pg_database: str,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    database = database_from_url(pg_database)
    app, store = CrmApplication(database), ReadModelStore(database)
    try:
        app.ensure_default_pipelines()
        DemoHistory(app, DemoSettings(seed=4, leads=60, days=60)).run()
        bulk_build(app, store, ["funnel"])  # the current tables, as the projector names them
        indexes, rows = store.query(_INDEXES), store.query("SELECT count(*) FROM funnel_intervals")
        assert any(name == "funnel_intervals_pkey" for _, name in indexes) and rows[0][0] > 20
        bulk_build(app, store, ["funnel"])
        assert store.query(_INDEXES) == indexes and store.query(_BESIDE) == [(0,)]
        assert store.query("SELECT count(*) FROM funnel_intervals") == rows

        fill = table_lanes.fill

        def broken(cursor: object, table: object, reader: object) -> None:  # after some tables were built
            fill(cursor, table, reader)  # type: ignore[arg-type]
            if table.name == f"funnel_changes{table_lanes.BESIDE}":  # type: ignore[attr-defined]
                raise RuntimeError("the disk is full")
        monkeypatch.setattr(table_lanes, "fill", broken)
        position = read_positions(store, ["funnel"])
        with pytest.raises(RuntimeError, match="disk is full"):
            bulk_build(app, store, ["funnel"])
        assert store.query(_BESIDE) == [(0,)] and read_positions(store, ["funnel"]) == position
        assert store.query("SELECT count(*) FROM funnel_intervals") == rows and store.query(_INDEXES) == indexes
    finally:
        store.close()
        app.close()
