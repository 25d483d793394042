"""`crm projections rebuild --online` on SQLite (the new version built in a file beside the log, copied in by one
write transaction) and what it refuses: an in-memory log, an unknown name, a new version that stops where the
current one does not (the current one stays and answers)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from domain.lead import Lead
from gateways.cli.main import app as cli
from projections.read_model import ReadModel, Rows
from projections.tables import Table
from services.application import CrmApplication
from services.commands import CaptureLead
from services.demo.sample_data import DemoHistory, DemoSettings
from services.projection_runtime import registry
from services.projection_runtime.online_rebuild import OnlineRebuildRefused, handler_build, rebuild_online
from services.projection_runtime.projector import FeederConflict
from services.projection_runtime.rebuild_record import rebuilds
from services.projection_runtime.registry import UnknownReadModel, projector_for, summaries
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import at

NOW = datetime(2027, 1, 1, tzinfo=timezone.utc)
COUNTED = Table("test_counted", (("kind", "TEXT"), ("n", "INTEGER")), ("kind",))


class Counted(ReadModel):
    """Counts captured leads; refuses the third one while `fragile` (a new version with a bug)."""

    name = "test_counted"
    tables = (COUNTED,)
    fragile = False

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return {Lead.Captured: self._count}

    def _count(self, event: Any, rows: Rows) -> None:
        row = rows.get(COUNTED, "lead") or {"kind": "lead", "n": 0}
        if self.fragile and row["n"] == 2:
            raise ValueError("a bug of the new version")
        rows.put(COUNTED, {**row, "n": row["n"] + 1})


@pytest.fixture
def app(tmp_path: Path) -> Iterator[CrmApplication]:
    with closing(CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'crm.db'}"))) as crm:
        crm.ensure_default_pipelines()
        yield crm


@pytest.fixture
def store(app: CrmApplication) -> Iterator[ReadModelStore]:
    with closing(ReadModelStore(app.database)) as read_store:
        yield read_store


def test_an_online_rebuild_on_sqlite_swaps_in_what_a_clean_rebuild_builds(app: CrmApplication,
                                                                            store: ReadModelStore) -> None:
    DemoHistory(app, DemoSettings(seed=3, leads=60, days=60)).run()
    projector_for(app, store).catch_up()
    before = summaries(app, store, NOW)
    seen: list[tuple[int, list[Any]]] = []

    def build(app: CrmApplication, green: ReadModelStore, names: Any, progress: Any) -> int:
        seen.append((len(summaries(app, store, NOW)["timeline"]), rebuilds(store)))  # the current one answers
        position = handler_build(app, green, names, progress)
        seen.append((len(summaries(app, store, NOW)["timeline"]), rebuilds(store)))
        return position

    assert rebuild_online(app, store, [], build) == app.event_count()  # as `crm serve` calls it: recorded too
    assert [count for count, _ in seen] == [len(before["timeline"])] * 2
    assert {r.applied for r in seen[1][1]} == {app.event_count()} and all(r.running for r in seen[1][1])
    assert len(seen[1][1]) == len(registry.READ_MODELS) and not any(r.running for r in rebuilds(store))
    assert summaries(app, store, NOW) == before
    assert not os.path.exists(f"{app.database.sqlite_path}.green")
    projector_for(app, store).rebuild()
    assert summaries(app, store, NOW) == before


def test_a_new_version_that_stops_where_the_current_does_not_is_not_swapped_in(
        app: CrmApplication, store: ReadModelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.READ_MODELS, Counted.name, Counted)
    for i in range(4):
        app.capture_lead(CaptureLead(f"线索{i}", "华东", "零售", "web"), at(i))
    projector_for(app, store, [Counted.name]).catch_up()
    monkeypatch.setattr(Counted, "fragile", True)
    with pytest.raises(OnlineRebuildRefused, match="a bug of the new version"):
        rebuild_online(app, store, [Counted.name])
    assert store.query("SELECT n FROM test_counted") == [(4,)]
    assert store.query("SELECT count(*) FROM projection_failures") == [(0,)]


def test_an_online_rebuild_refuses_an_in_memory_log_and_unknown_names(crm: CrmApplication, app: CrmApplication,
                                                                      store: ReadModelStore) -> None:
    with pytest.raises(UnknownReadModel):
        rebuild_online(app, store, ["nonesuch"])
    memory = ReadModelStore(crm.database)
    with pytest.raises(OnlineRebuildRefused, match="in-memory"):
        rebuild_online(crm, memory, ["funnel"])
    memory.close()


def test_the_command_says_what_it_swapped_in(app: CrmApplication, store: ReadModelStore,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    app.capture_lead(CaptureLead("线索", "华东", "零售", "web"), at(1))
    monkeypatch.setenv("CRM_DATABASE_URL", app.database.url)
    done = CliRunner().invoke(cli, ["projections", "rebuild", "--online", "timeline"])
    assert done.exit_code == 0, done.output
    assert "Swapped in the new timeline at log position" in done.output


def test_a_new_version_with_another_schema_is_swapped_in_and_a_start_then_keeps_it(
        app: CrmApplication, store: ReadModelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upgrade path: the new release's `rebuild --online` while the old one answers; its start drops nothing."""
    monkeypatch.setitem(registry.READ_MODELS, Counted.name, Counted)
    for i in range(3):
        app.capture_lead(CaptureLead(f"线索{i}", "华东", "零售", "web"), at(i))
    old_follower = projector_for(app, store, [Counted.name])
    old_follower.catch_up()
    monkeypatch.setattr(Counted, "revision", 2)  # what the handlers write changed: a new fingerprint
    assert rebuild_online(app, store, [Counted.name]) == app.event_count()
    assert projector_for(app, store, [Counted.name]).positions() == {Counted.name: app.event_count()}  # kept
    assert store.query("SELECT n FROM test_counted") == [(3,)]
    app.capture_lead(CaptureLead("线索3", "华东", "零售", "web"), at(3))
    with pytest.raises(FeederConflict, match="another version of the code"):  # the old release's follower
        old_follower.catch_up()
    assert store.query("SELECT n FROM test_counted") == [(3,)]
