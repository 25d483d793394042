"""The scenario of a server started on a database whose funnel tables another version made (SQLite in the unit
tests, PostgreSQL in the integration ones): its funnel answers 503 with the online build's progress (the CLI
exits 1 with the same sentence; an offline rebuild/reset is refused, nothing changed) while the segments answer;
after the swap it answers what it answered before, and what a clean rebuild answers."""

from __future__ import annotations

import threading
import time
from contextlib import closing
from datetime import datetime, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateways.cli.main import app as cli
from gateways.http.app import create_app
from domain.base import Meta
from gateways.http.tokens import Principal, TokenRegistry, hash_token
from projections.funnel import FunnelReadModel
from services.application import CrmApplication
from services.commands import CaptureLead
from services.demo.sample_data import DemoHistory, DemoSettings
from services.projection_runtime import background
from services.projection_runtime.online_rebuild import rebuild_online
from services.projection_runtime.registry import projector_for
from services.settings import Database
from services.storage.read_model_store import ReadModelStore

GREEN_BATCH = 20  # log positions per batch of the paused build: several batches over the demo log
UNTIL = datetime(2026, 6, 1, tzinfo=timezone.utc)  # the demo history's end, and the instant asked
LATER = datetime(2026, 7, 1, tzinfo=timezone.utc)  # a lead captured during the build: after the instant asked
AS_OF = "as_of=2026-06-01T00:00:00Z"
QUERIES = (f"/funnel?{AS_OF}", f"/funnel?pipeline=marketing&{AS_OF}", f"/segments?{AS_OF}")
TOKEN = "tok-analyst-schema-change"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def build_every_read_model(database: Database, leads: int = 80) -> None:
    """A demo log with every read model built, as a running release leaves it."""
    with closing(CrmApplication(database)) as crm, closing(ReadModelStore(database)) as store:
        crm.ensure_default_pipelines()
        DemoHistory(crm, DemoSettings(seed=3, leads=leads, days=90, until=UNTIL)).run()
        projector_for(crm, store).catch_up()


def api(database: Database, follow_log: bool = False) -> TestClient:
    tokens = TokenRegistry([(hash_token(TOKEN), Principal("王芳", "analyst"))])
    return TestClient(create_app(database, tokens, follow_log=follow_log))


def answers(database: Database, follow_log: bool = False) -> dict[str, Any]:
    with api(database, follow_log) as client:
        return {path: client.get(path, headers=AUTH).json() for path in QUERIES}


def database_state(database: Database) -> dict[str, Any]:
    """Every read-model table's row count and every position: what an offline rebuild or reset would change."""
    with closing(ReadModelStore(database)) as store:
        catalog = ("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()" if store.kind == "postgresql"
                   else "SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = [name for (name,) in store.query(catalog)]
        counts = {table: store.query(f'SELECT count(*) FROM "{table}"')[0][0] for table in tables}
        return {**counts, "positions": store.query("SELECT * FROM projection_positions ORDER BY name")}


def text(output: str) -> str:
    """The CLI's message without the line breaks rich puts in at the terminal's width."""
    return " ".join(output.split())


class PausedBuild:
    """The handlers' build in small batches, held after its first batch until released (a slow build)."""

    def __init__(self) -> None:
        self.reported, self.release = threading.Event(), threading.Event()

    def __call__(self, app: CrmApplication, green: ReadModelStore, names: Any, progress: Any) -> int:
        def report(done: int, head: int) -> None:
            progress(done, head)
            self.reported.set()
            assert self.release.wait(30)

        projector = projector_for(app, green, names)
        projector.catch_up(report, limit=GREEN_BATCH, strict=False)
        return min(projector.positions().values())


def check_a_start_with_changed_funnel_tables(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the scenario (module docstring) on `database`, built by `build_every_read_model`; CRM_DATABASE_URL
    names it for the CLI."""
    before = answers(database)
    monkeypatch.setattr(FunnelReadModel, "revision", FunnelReadModel.revision + 1)  # the new release's funnel
    build = PausedBuild()
    monkeypatch.setattr(background, "rebuild_online", lambda app, store, names, on_progress: rebuild_online(
        app, store, names, build, on_progress))

    with api(database, follow_log=True) as client:
        assert build.reported.wait(30)
        head = client.app.state.crm.event_count()
        building, segments = (client.get(path, headers=AUTH) for path in (QUERIES[0], QUERIES[2]))
        report = CliRunner().invoke(cli, ["funnel", "--json"])
        state = database_state(database)
        refused = [CliRunner().invoke(cli, ["projections", *command]) for command in
                   (["rebuild", "funnel", "--jobs", "1"], ["reset", "segments"])]
        unchanged = database_state(database) == state
        health = _when_ready_despite_the_funnel_lagging(client)
        build.release.set()
        after = _when_answering(client, QUERIES[0])

    assert building.status_code == 503 and 1 <= int(building.headers["Retry-After"]) <= 60
    body = building.json()
    assert "read model(s) funnel are being rebuilt" in body["error"] and f"of {head:,} events applied" in body["error"]
    assert body["detail"]["read_models"] == ["funnel"] and body["detail"]["total"] == head
    assert 0 < body["detail"]["applied"]["funnel"] < head
    assert segments.status_code == 200 and segments.json() == before[QUERIES[2]]
    assert report.exit_code == 1 and body["error"].split(" (")[0] in text(report.output)
    for result in refused:
        assert result.exit_code == 1 and "an online rebuild is running on this database" in text(result.output)
    assert unchanged
    assert health["rebuilding"]["funnel"]["applied"] > 0 and health["read_models"]["funnel"]["lag"] >= 1
    assert after == before[QUERIES[0]]
    assert answers(database, follow_log=True) == before  # a restart keeps the new version: nothing to build
    with closing(CrmApplication(database)) as crm, closing(ReadModelStore(database)) as store:
        projector_for(crm, store, ["funnel"]).rebuild()
    assert answers(database) == before  # what a clean rebuild answers


def _when_ready_despite_the_funnel_lagging(client: TestClient) -> Any:
    """/health once the others have applied a new event the funnel (fed by nobody while it is built) has not:
    ready even with CRM_READY_MAX_LAG=0, since the funnel being rebuilt does not count."""
    client.app.state.ready_max_lag = 0
    client.app.state.crm.capture_lead(CaptureLead("线索", "华东", "零售", "web"), Meta(occurred_at=LATER))
    deadline = time.monotonic() + 30
    while (response := client.get("/health")).status_code == 503:
        assert time.monotonic() < deadline, response.text
        time.sleep(0.05)
    return response.json()


def _when_answering(client: TestClient, path: str) -> Any:
    deadline = time.monotonic() + 30
    while (response := client.get(path, headers=AUTH)).status_code == 503:
        assert time.monotonic() < deadline, response.text
        time.sleep(0.05)
    assert response.status_code == 200, response.text
    return response.json()
