"""`crm projections follow | consume | reset` keep one feeder per read model: each refuses, with a sentence
saying what to do, a read model the other kind of feeder feeds (exit 1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from domain.base import Meta
from gateways.cli.common import crm_application
from gateways.cli.main import app
from services.application import CrmApplication
from services.commands import RegisterCustomer
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

runner = CliRunner()


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """One customer in an SQLite log that the commands find (CRM_DATABASE_URL)."""
    monkeypatch.setenv("CRM_DATABASE_URL", url := f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    monkeypatch.setenv("COLUMNS", "400")  # the refusal's sentence on few lines
    with crm_application() as crm:
        crm.register_customer(RegisterCustomer("张三", "华东", "零售", "web"), Meta(actor="test"))
    return url


def _consumers_fed_the_funnel(url: str) -> None:
    """As a `crm projections consume` member leaves it: the funnel's offset in partition 0."""
    crm = CrmApplication(database_from_url(url))
    store = ReadModelStore(crm.database)
    projector_for(crm, store)  # the tables
    with store.transaction() as cursor:
        cursor.execute('INSERT INTO projection_offsets (name, "partition", "offset") VALUES (\'funnel\', 0, 0)')
    store.close()
    crm.close()


def _positions(url: str) -> dict[str, int]:
    crm = CrmApplication(database_from_url(url))
    store = ReadModelStore(crm.database)
    try:
        return projector_for(crm, store).positions()
    finally:
        store.close()
        crm.close()


def test_follow_refuses_read_models_consumers_feed(sqlite_url: str) -> None:
    _consumers_fed_the_funnel(sqlite_url)

    result = runner.invoke(app, ["projections", "follow"])

    assert result.exit_code != 0
    assert "funnel are fed per partition by `crm projections consume`" in " ".join(result.output.split())
    assert set(_positions(sqlite_url).values()) == {0}  # nothing fed


def test_consume_refuses_read_models_the_follower_fed_until_they_are_reset(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateways.kafka.relay.ensure_events_topic", lambda bootstrap, topic: None)  # no broker
    assert runner.invoke(app, ["projections", "catch-up"]).exit_code == 0  # the follower fed them all

    result = runner.invoke(app, ["projections", "consume", "funnel", "--once"])

    assert result.exit_code != 0
    said = " ".join(result.output.split())
    assert "funnel are fed by the log follower" in said and "crm projections reset funnel" in said
    assert runner.invoke(app, ["projections", "reset", "funnel"]).exit_code == 0
    assert _positions(sqlite_url)["funnel"] == 0 and _positions(sqlite_url)["timeline"] > 0
