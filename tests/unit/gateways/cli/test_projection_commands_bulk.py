"""`crm projections rebuild --bulk`: the funnel folded set-based, the others by their handlers; a log the bulk
path cannot read is refused with a sentence (exit 1), nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from domain.base import Meta
from gateways.cli.common import crm_application
from gateways.cli.main import app
from services.commands import AssignLead, CaptureLead, DisqualifyLead, OpenDeal, RegisterCustomer
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


def test_rebuild_bulk_refuses_a_fact_the_handlers_refuse_with_a_sentence(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A lead qualified after its capture was passed by (`resume --skip`): the campaigns' handlers stop there,
    so their fold refuses (exit 1, the lead and position named), offline and online; their tables stay."""
    monkeypatch.setenv("CRM_DATABASE_URL", url := f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    monkeypatch.setenv("COLUMNS", "400")
    with crm_application() as crm:
        crm.ensure_default_pipelines(Meta(actor="test"))
        lead = crm.capture_lead(CaptureLead("甲", "华东", "零售", "web"), Meta(actor="test"))
        captured = crm.event_count()
        crm.assign_lead(AssignLead(lead, "李娜"), Meta(actor="test"))
        crm.disqualify_lead(DisqualifyLead(lead, "无预算"), Meta(actor="test"))
    assert runner.invoke(app, ["projections", "rebuild", "--bulk", "campaigns"]).exit_code == 0
    store = ReadModelStore(database_from_url(url))
    with store.transaction() as cursor:
        cursor.execute("INSERT INTO projection_skips (name, position, aggregate_id, event_type, reason, skipped_at) "
                       "VALUES ('campaigns', ?, ?, 'Lead.Captured', 'test', '')", (captured, str(lead)))

    for online in ([], ["--online"]):
        result = runner.invoke(app, ["projections", "rebuild", *online, "--bulk", "campaigns"])

        assert result.exit_code == 1, result.output
        said = " ".join(result.output.split())
        assert "campaigns: the log holds 1 lead event(s) before the lead was captured" in said
        assert f"lead {lead} at log position {captured + 2}" in said and "Traceback" not in said
        assert len(store.query("SELECT * FROM campaigns_leads")) == 1  # the handlers' rows, as they were
    store.close()
