"""A server started on an SQLite log whose funnel tables another version made builds the new funnel online:
503 with the build's progress for the funnel (the CLI exits 1 with the same sentence) while the other read
models answer; after the swap what a clean rebuild answers (tests.support.schema_change_start). An offline
rebuild/reset is refused while an online rebuild runs, nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateways.cli.main import app as cli
from services.application import CrmApplication
from services.projection_runtime.online_rebuild import exclusive
from services.projection_runtime.registry import READ_MODELS
from services.projection_runtime import schema_change
from services.projection_runtime.schema_change import ReadModelRebuilding, read_model_class
from services.settings import Database, database_from_url
from tests.support.schema_change_start import (build_every_read_model, check_a_start_with_changed_funnel_tables,
                                               database_state, text)


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    database = database_from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    monkeypatch.setenv("CRM_DATABASE_URL", database.url)
    build_every_read_model(database)
    yield database


def test_a_start_with_changed_funnel_tables_answers_503_with_progress_then_what_a_clean_rebuild_answers(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    check_a_start_with_changed_funnel_tables(database, monkeypatch)


def test_an_offline_rebuild_or_reset_is_refused_while_an_online_rebuild_runs(database: Database) -> None:
    state = database_state(database)
    with closing(CrmApplication(database)) as crm, exclusive(crm):  # what an online rebuild holds
        results = [CliRunner().invoke(cli, ["projections", *command]) for command in
                   (["rebuild"], ["rebuild", "funnel", "--jobs", "1"], ["reset", "timeline"])]
        assert database_state(database) == state
        for result in results:
            assert result.exit_code == 1, result.output
            assert "an online rebuild is running on this database" in text(result.output)
            assert "nothing was changed" in text(result.output)
    done = CliRunner().invoke(cli, ["projections", "reset", "timeline"])  # once it ended
    assert done.exit_code == 0, done.output


def test_a_query_finds_each_read_model_of_the_registry_in_its_slice_without_importing_the_registry() -> None:
    assert {name: read_model_class(name) for name in READ_MODELS} == READ_MODELS
    assert read_model_class("nonesuch") is None


def test_the_refusal_says_the_progress_and_an_eta_once_two_readings_give_a_rate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 102.0, 103.0])
    monkeypatch.setattr(schema_change.time, "monotonic", lambda: next(clock))
    rates = schema_change._Rates()
    assert rates.eta({"funnel": 1_000}, 11_000) is None  # one reading: no rate yet
    assert rates.eta({"funnel": 3_000}, 11_000) == 8.0  # 2,000 events in 2 s: 8,000 left
    assert rates.eta({"funnel": 10}, 11_000) is None  # a new build started: measured again

    building = ReadModelRebuilding(["funnel"], {"funnel": 3_000}, 11_000, 8.0)
    assert str(building).startswith("read model(s) funnel are being rebuilt for this version of their tables "
                                    "(funnel: 3,000 of 11,000 events applied (27 %), about 8 s left)")
    assert building.retry_after == 9 and building.detail()["eta_seconds"] == 8.0
    assert ReadModelRebuilding(["funnel"], {"funnel": 1}, 11_000, 600.0).retry_after == 60
    assert "about 10 min 0 s left" in str(ReadModelRebuilding(["funnel"], {"funnel": 1}, 11_000, 600.0))
    assert "(100 %), under 1 s left)" in str(ReadModelRebuilding(["funnel"], {"funnel": 11_000}, 11_000, 0.4))
    waiting = ReadModelRebuilding(["funnel"], {}, 11_000, None)
    assert "has not reported progress yet" in str(waiting) and waiting.retry_after == 5
