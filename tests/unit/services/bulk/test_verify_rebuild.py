"""`crm projections verify` on SQLite: equal on the demo history, while the log has moved past the live read
models (the copy is built up to their position, not the head); a live row changed by hand reported with its key
and exit 1; the JSON shape; the private file gone afterwards; refusals."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateways.cli.main import app as cli
from services.application import CrmApplication
from services.bulk.duckdb_rebuild import FOLDS
from services.bulk.verify_rebuild import VerifyRefused, default_names, verify
from services.commands import AssignLead, CaptureLead, OpenDeal, RegisterCustomer, ReopenDeal, WinDeal
from services.demo.sample_data import DemoHistory, DemoSettings
from services.projection_runtime.registry import READ_MODELS, UnknownReadModel, projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at

runner = CliRunner()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[CrmApplication]:
    with closing(CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'crm.db'}"))) as crm:
        crm.ensure_default_pipelines()
        DemoHistory(crm, DemoSettings(seed=3, leads=100, days=90)).run()
        yield crm


@pytest.fixture
def store(app: CrmApplication) -> Iterator[ReadModelStore]:
    with closing(ReadModelStore(app.database)) as read_store:
        projector_for(app, read_store).catch_up()
        yield read_store


def test_the_live_read_models_equal_their_bulk_rebuild_even_when_the_log_moved_past_them(
        app: CrmApplication, store: ReadModelStore) -> None:
    live = app.event_count()
    for n in range(3):  # not applied: the live ones stand at `live`
        app.assign_lead(AssignLead(app.capture_lead(CaptureLead(f"后来{n}", "华东", "零售", "web"), at(100)), "王伟"),
                        at(101))
    assert app.event_count() > live
    handled = [name for name in READ_MODELS if name not in FOLDS]  # built by their handlers, bounded alike
    assert handled  # (reminders and forecast have no fold yet: this is the test of verify's handlers path)
    result = verify(app, store, [*default_names(), *handled])
    assert result.equal, result.as_json()
    assert {m.name: (m.position, m.rebuilt_position) for m in result.read_models} == {
        name: (live, live) for name in [*default_names(), *handled]}
    assert sum(t.live_rows for m in result.read_models for t in m.tables) > 300
    assert not os.path.exists(f"{app.database.sqlite_path}.green")  # the private place cleared


def test_a_live_row_changed_by_hand_is_reported_with_its_key_and_exit_1(
        app: CrmApplication, store: ReadModelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    (item,), = store.query("SELECT item_id FROM funnel_items ORDER BY item_id LIMIT 1")
    with store.transaction() as cursor:
        cursor.execute("UPDATE funnel_items SET owner = 'tampered' WHERE item_id = ?", (item,))
        cursor.execute("DELETE FROM timeline_campaigns WHERE campaign_id IN "
                       "(SELECT campaign_id FROM timeline_campaigns LIMIT 1)")
    monkeypatch.setenv("CRM_DATABASE_URL", app.database.url)
    monkeypatch.setenv("COLUMNS", "200")
    shown = runner.invoke(cli, ["projections", "verify"])
    assert shown.exit_code == 1, shown.output
    assert item in shown.output and "tampered" in shown.output and "DIFFERENT" in shown.output

    as_json = runner.invoke(cli, ["projections", "verify", "--json"])
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["equal"] is False and [m["name"] for m in report["read_models"]] == default_names()
    tables = {t["table"]: t for m in report["read_models"] for t in m["tables"]}
    assert set(tables["funnel_items"]) == {"table", "live_rows", "rebuilt_rows", "only_live", "only_rebuilt",
                                           "differing", "examples", "equal"}
    assert (tables["funnel_items"]["differing"], tables["funnel_items"]["only_live"]) == (1, 0)
    (example,) = tables["funnel_items"]["examples"]
    assert example["kind"] == "differing" and example["key"] == {"item_id": item}
    assert example["live"]["owner"] == "tampered" != example["rebuilt"]["owner"]
    campaigns = tables["timeline_campaigns"]
    assert (campaigns["only_rebuilt"], campaigns["rebuilt_rows"] - campaigns["live_rows"]) == (1, 1)
    assert campaigns["examples"][0]["live"] is None
    assert all(t["equal"] for name, t in tables.items() if name not in ("funnel_items", "timeline_campaigns"))


def test_equal_read_models_exit_0(app: CrmApplication, store: ReadModelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", app.database.url)
    shown = runner.invoke(cli, ["projections", "verify", "--json", "funnel"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["equal"] is True


def test_refusals_write_nothing(app: CrmApplication, store: ReadModelStore, tmp_path: Path) -> None:
    with pytest.raises(UnknownReadModel):
        verify(app, store, ["nope"])
    with store.transaction() as cursor:
        cursor.execute("DELETE FROM projection_positions WHERE name = 'timeline'")
    with pytest.raises(VerifyRefused, match="never built"):
        verify(app, store, ["timeline"])
    assert not os.path.exists(f"{app.database.sqlite_path}.green")


def test_segments_fed_batch_by_batch_equal_their_bulk_rebuild_superseded_rows_aside(app: CrmApplication) -> None:
    """Fed batch by batch, the segments' handlers leave superseded intervals where a timeline shrank (a win
    reopened in a later batch; which rows depends on how the batches fell): no query reads them, and verify
    leaves them out."""
    with closing(ReadModelStore(app.database)) as store:
        projector_for(app, store, ["segments"]).catch_up()
        customer = app.register_customer(RegisterCustomer("客户", "华东", "零售", "web"), at(100))
        deal = app.open_deal(OpenDeal(customer, "项目", "100", owner="李娜"), at(101))
        app.win_deal(WinDeal(deal), at(102))
        projector_for(app, store, ["segments"]).catch_up()  # won: an interval at each age of the purchase
        app.reopen_deal(ReopenDeal(deal, "重谈"), at(103))
        projector_for(app, store, ["segments"]).catch_up()  # open again: fewer
        (superseded,), = store.query("SELECT count(*) FROM segments_intervals WHERE valid_from = 0 AND valid_to = 0")
        result = verify(app, store, ["segments"])
    assert superseded > 0
    assert result.equal, result.as_json()
    assert {t.table: t.live_rows == t.rebuilt_rows > 0 for t in result.read_models[0].tables}["segments_intervals"]


def test_read_models_built_in_another_time_zone_are_refused_not_reported_as_differing(
        app: CrmApplication, store: ReadModelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Built in UTC, verified with CRM_TIME_ZONE=Asia/Shanghai: every tally's day would differ for that alone."""
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Shanghai")
    with pytest.raises(VerifyRefused, match="CRM_TIME_ZONE"):
        verify(app, store, ["funnel"])
    assert not os.path.exists(f"{app.database.sqlite_path}.green")
