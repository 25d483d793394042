"""The record of a running `crm projections rebuild` that /metrics reads: started, finished even by an error,
progress from the positions, never past 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.projection_runtime.rebuild_record import Rebuild, rebuilds, record_online_progress, recorded_rebuild
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore


def test_a_rebuild_is_running_in_its_block_and_finished_after_even_when_it_fails(tmp_path: Path) -> None:
    store = ReadModelStore(database_from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}"))
    with store.transaction() as cursor:
        cursor.execute("CREATE TABLE projection_positions (name TEXT PRIMARY KEY, position BIGINT)")
        cursor.execute("INSERT INTO projection_positions VALUES ('funnel', 30)")

    with pytest.raises(RuntimeError), recorded_rebuild(store, ["funnel", "timeline"], total=120):
        during = rebuilds(store)
        raise RuntimeError("the rebuild died")
    after = rebuilds(store)
    store.close()

    assert during == [Rebuild("funnel", 120, 30, True), Rebuild("timeline", 120, 0, True)]
    assert during[0].progress == 0.25 and [r.running for r in after] == [False, False]


def test_progress_stops_at_1_when_the_log_grew_during_the_rebuild_and_an_empty_log_is_done() -> None:
    assert Rebuild("funnel", 100, 130, False).progress == 1.0
    assert Rebuild("funnel", 0, 0, True).progress == 1.0


def test_an_online_rebuild_shows_its_own_progress_and_a_killed_ones_is_forgotten_by_the_next(tmp_path: Path) -> None:
    store = ReadModelStore(database_from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}"))
    with store.transaction() as cursor:
        cursor.execute("CREATE TABLE projection_positions (name TEXT PRIMARY KEY, position BIGINT)")
        cursor.execute("INSERT INTO projection_positions VALUES ('funnel', 100)")  # the live version, at the head

    with recorded_rebuild(store, ["funnel"], total=100):
        record_online_progress(store, ["funnel"], 40)  # the new version, built beside it; then killed
        during = rebuilds(store)
    with recorded_rebuild(store, ["funnel"], total=100):
        next_one = rebuilds(store)
    store.close()

    assert during == [Rebuild("funnel", 100, 40, True)] and next_one == [Rebuild("funnel", 100, 100, True)]
