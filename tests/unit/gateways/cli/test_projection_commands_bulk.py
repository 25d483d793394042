"""`crm projections rebuild --bulk`: the funnel folded set-based, the others by their handlers; a log the bulk
path cannot read is refused with a sentence (exit 1), nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from domain.base import Meta
from gateways.cli.common import crm_application
from gateways.cli.main import app
from services.commands import OpenDeal, RegisterCustomer
from services.projection_runtime.projector import read_positions
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

runner = CliRunner()


def test_rebuild_bulk_brings_every_read_model_to_the_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", url := f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    with crm_application() as crm:
        crm.ensure_default_pipelines(Meta(actor="test"))
        customer = crm.register_customer(RegisterCustomer("张三", "华东", "零售", "web"), Meta(actor="test"))
        crm.open_deal(OpenDeal(customer, "项目", "100", owner="李娜"), Meta(actor="test"))

    result = runner.invoke(app, ["projections", "rebuild", "--bulk"])

    assert result.exit_code == 0, result.output
    store = ReadModelStore(database_from_url(url))
    assert set(read_positions(store, ["funnel", "segments", "timeline"]).values()) == {5}
    assert store.query("SELECT stage, owner FROM funnel_items") == [("lead", "李娜")]
    store.close()


def test_rebuild_bulk_refuses_a_log_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", "memory://")
    monkeypatch.setenv("COLUMNS", "400")

    result = runner.invoke(app, ["projections", "rebuild", "--bulk", "funnel"])

    assert result.exit_code == 1
    assert "the bulk path reads a PostgreSQL or SQLite log" in " ".join(result.output.split())
