"""An event a read model cannot apply stops that read model (never a crash loop), says where and why in
`crm projections status` and `GET /health`, lets the others go on, and is repaired by compensating events
and `crm projections resume`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from domain.lead import Lead
from gateways.cli.main import app as cli
from gateways.http.app import create_app
from gateways.http.tokens import Principal, TokenRegistry, hash_token
from services.application import CrmApplication
from services.commands import CaptureLead
from services.projection_runtime.projector import ReadModelStopped
from services.projection_runtime.registry import projector_for, summaries
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import at
from tests.unit.services.history.test_rules import record_sale

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def write_unappliable_event(app: CrmApplication) -> UUID:
    """What a bad import once wrote (a win predating first contact): a lead whose first event is Assigned,
    straight into the log, past every check."""
    lead = uuid4()
    event = Lead.Assigned(originator_id=lead, originator_version=1, timestamp=datetime.now(timezone.utc),
                          occurred_at=datetime(2026, 3, 2, tzinfo=timezone.utc), actor="导入",
                          correlation_id="bad-import", owner="李娜", rule="manual")
    app.recorder.insert_events([app.mapper.to_stored_event(event)])
    return lead


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "crm.db"


@pytest.fixture
def app(path: Path) -> Iterator[CrmApplication]:
    crm = CrmApplication(database_from_url(f"sqlite:///{path}"))
    record_sale(crm)
    yield crm
    crm.close()


@pytest.fixture
def store(app: CrmApplication) -> Iterator[ReadModelStore]:
    read_store = ReadModelStore(app.database)
    yield read_store
    read_store.close()


def test_an_unappliable_event_stops_that_read_model_with_a_clear_error_and_the_others_go_on(app, store) -> None:
    lead = write_unappliable_event(app)
    bad = app.event_count()
    app.capture_lead(CaptureLead("张伟", "华北", "制造", "web", company="北京数联"), at(8))  # recorded after the bad event

    projector_for(app, store).catch_up(strict=False)

    states = {state.name: state for state in projector_for(app, store).status()}  # a new projector: durable
    funnel = states.pop("funnel")
    assert funnel.position == bad - 1 and funnel.failure is not None
    assert (funnel.failure.position, funnel.failure.aggregate_id, funnel.failure.event_type) == \
        (bad, str(lead), "Lead.Assigned")
    assert "changed before it entered its pipeline" in funnel.failure.reason
    assert all(state.lag == 0 and not state.stopped for state in states.values())


def test_a_stopped_read_model_never_crash_loops_and_its_queries_say_why(app, store) -> None:
    write_unappliable_event(app)
    projector = projector_for(app, store, ["funnel"])

    with pytest.raises(ReadModelStopped, match=r"read model funnel is stopped at log position \d+: it cannot apply "
                                               r"Lead\.Assigned of aggregate .*crm projections resume funnel"):
        projector.catch_up()
    assert projector.run_batch() == 0 and projector.run_batch() == 0  # waits, does not fail again
    projector_for(app, store, ["campaigns", "timeline"]).catch_up()  # the others answer


def test_compensating_events_and_resume_with_skip_let_it_go_on_as_a_rebuild_would(app, store) -> None:
    write_unappliable_event(app)
    projector = projector_for(app, store)
    projector.catch_up(strict=False)
    app.capture_lead(CaptureLead("王芳", "华东", "互联网", "web", company="杭州云启科技有限公司"),
                     at(2))  # compensating: the lead, captured

    assert projector.resume("funnel", skip=False) is not None  # a retry without a fix stops it again
    projector.catch_up(strict=False)
    assert projector.status()[0].stopped
    skipped = projector.resume("funnel", skip=True)
    projector.catch_up()

    assert [(s.name, s.position) for s in projector.skips()] == [("funnel", skipped.position)]
    assert all(state.lag == 0 and not state.stopped for state in projector.status())
    incremental = summaries(app, store, NOW)
    projector.rebuild()  # rebuilds pass the event by too: incremental == rebuild
    assert summaries(app, store, NOW) == incremental
    assert incremental["funnel"]["marketing"]["rows"][0]["items"] == 1  # the compensating lead, captured


def test_without_a_failure_resume_changes_nothing(app, store) -> None:
    projector = projector_for(app, store)
    projector.catch_up()

    assert projector.resume("funnel", skip=True) is None and projector.skips() == []


def test_crm_projections_status_shows_the_failure_and_exits_non_zero_until_resumed(app, path, monkeypatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("COLUMNS", "400")
    runner = CliRunner()
    lead = write_unappliable_event(app)
    caught_up = runner.invoke(cli, ["projections", "catch-up"])
    funnel = runner.invoke(cli, ["funnel"])

    status = runner.invoke(cli, ["projections", "status"])

    assert caught_up.exit_code == 1 and "read model funnel is stopped" in caught_up.output
    assert funnel.exit_code == 1 and "read model funnel is stopped" in funnel.output
    assert status.exit_code == 1
    assert f"Lead.Assigned of aggregate {lead}" in status.output and "stopped: funnel" in status.output
    resumed = runner.invoke(cli, ["projections", "resume", "funnel", "--skip"])
    assert resumed.exit_code == 0, resumed.output
    again = runner.invoke(cli, ["projections", "status"])
    assert again.exit_code == 0 and "funnel passed by Lead.Assigned" in again.output


def test_health_reports_each_read_model_and_answers_503_while_one_is_stopped(app, store) -> None:
    tokens = TokenRegistry([(hash_token("s3cret"), Principal("李娜", "admin"))])
    client = TestClient(create_app(app.database, tokens))
    auth = {"Authorization": "Bearer s3cret"}
    assert client.get("/health").status_code == 200
    write_unappliable_event(app)
    projector_for(app, store).catch_up(strict=False)  # as the follower would

    funnel = client.get("/funnel", headers=auth)
    health = client.get("/health")

    assert funnel.status_code == 503 and "read model funnel is stopped" in funnel.json()["error"]
    assert health.status_code == 503
    models = health.json()["read_models"]
    assert "cannot apply Lead.Assigned" in models["funnel"]["failure"]
    assert models["funnel"]["lag"] == 1 and models["timeline"]["failure"] is None
    assert client.get(f"/customers/{uuid4()}/timeline", headers=auth).status_code == 404  # the others answer


def test_an_event_that_cannot_be_decoded_stops_only_the_read_models_that_handle_its_type(app, store) -> None:
    stored = app.mapper.to_stored_event(Lead.Assigned(
        originator_id=uuid4(), originator_version=1, timestamp=datetime.now(timezone.utc), occurred_at=NOW,
        actor="导入", correlation_id="x", owner="李娜", rule="manual"))
    app.recorder.insert_events([type(stored)(stored.originator_id, 1, stored.topic, b'{"not": "an event"')])

    projector = projector_for(app, store)
    projector.catch_up(strict=False)

    failures = projector.failures()
    assert set(failures) == {name for name, topics in projector._model_topics.items() if stored.topic in topics}
    assert "cannot be decoded" in failures["funnel"].reason and failures["funnel"].event_type == "Lead.Assigned"
    assert all(state.lag == 0 for state in projector.status() if not state.stopped)
