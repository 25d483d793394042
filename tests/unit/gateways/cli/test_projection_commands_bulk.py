"""`crm projections rebuild --bulk`: the funnel (and, with or without --online, the segments) folded set-based,
the others by their handlers; a log the bulk path cannot read is refused with a sentence (exit 1), nothing
written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from domain.base import Meta
from gateways.cli.common import crm_application
from gateways.cli.main import app
from services.bulk import duckdb_rebuild
from services.commands import OpenDeal, RegisterCustomer, WinDeal
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


def _segments_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A won deal on an SQLite log: 6 events, the deal's opening the 5th."""
    monkeypatch.setenv("CRM_DATABASE_URL", url := f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    monkeypatch.setenv("COLUMNS", "400")
    with crm_application() as crm:
        crm.ensure_default_pipelines(Meta(actor="test"))
        customer = crm.register_customer(RegisterCustomer("张三", "华东", "零售", "web"), Meta(actor="test"))
        crm.win_deal(WinDeal(crm.open_deal(OpenDeal(customer, "项目", "100", owner="李娜"), Meta(actor="test"))),
                     Meta(actor="test"))
    return url


@pytest.mark.parametrize("online", [[], ["--online"]])
def test_rebuild_bulk_folds_the_segments_set_based(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    online: list[str]) -> None:
    url = _segments_history(tmp_path, monkeypatch)
    folded: list[str] = []
    original = duckdb_rebuild.rebuild_set_based
    monkeypatch.setattr(duckdb_rebuild, "rebuild_set_based",
                        lambda app, store, model, *rest, **named: folded.append(model.name) or original(
                            app, store, model, *rest, **named))

    result = runner.invoke(app, ["projections", "rebuild", *online, "--bulk", "segments"])

    assert result.exit_code == 0, result.output
    assert folded == ["segments"]
    store = ReadModelStore(database_from_url(url))
    assert read_positions(store, ["segments"]) == {"segments": 6}
    assert store.query("SELECT tier FROM segments_intervals WHERE valid_to IS NULL") == [("ordinary",)]  # aged
    store.close()
