"""`crm projections verify` on PostgreSQL: the demo history's live funnel and timeline equal their bulk rebuild
while the live follower and a writer keep running (the copy is built at the live positions of one snapshot);
a live row changed by hand is reported with its key (exit 1, JSON); the private schema is empty afterwards."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from typer.testing import CliRunner

from gateways.cli.main import app as cli
from services.application import CrmApplication
from services.bulk.verify_rebuild import default_names, verify
from services.commands import CaptureLead
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at
from tests.integration import test_online_rebuild_postgres as online
from tests.integration.test_online_rebuild_postgres import Following, green_tables

runner = CliRunner()


demo = online.demo  # the online rebuild's: a demo log of ≈ 1,000 events, every read model caught up


def test_the_live_read_models_equal_their_bulk_rebuild_while_the_follower_and_a_writer_run(
        demo: tuple[CrmApplication, ReadModelStore]) -> None:
    app, store = demo
    stop, written = threading.Event(), []

    def write() -> None:
        while not stop.is_set():
            written.append(app.capture_lead(CaptureLead(f"写入{len(written)}", "华东", "零售", "web"), at(200)))

    writer = threading.Thread(target=write)
    with Following(app):
        writer.start()
        try:
            result = verify(app, store)
        finally:
            stop.set()
            writer.join(30)
    assert result.equal, result.as_json()
    assert written, "the writer ran during the verification"
    assert [m.name for m in result.read_models] == default_names() and "funnel" in default_names()
    tables = {t.table: t for m in result.read_models for t in m.tables}
    assert tables["funnel_intervals"].live_rows > 300 and tables["timeline_entries"].live_rows > 500
    assert max(m.position for m in result.read_models) < app.event_count()  # the log moved on meanwhile
    assert green_tables(store) == []


def test_a_live_row_changed_by_hand_is_reported_with_its_key(demo: tuple[CrmApplication, ReadModelStore],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    app, store = demo
    (item, seq), = store.query("SELECT item_id, seq FROM funnel_intervals ORDER BY item_id, seq LIMIT 1")
    with store.transaction() as cursor:
        cursor.execute("UPDATE funnel_intervals SET stage = 'tampered' WHERE item_id = ? AND seq = ?", (item, seq))
        # the same JSON with its keys in another order and other spacing: no difference
        cursor.execute("UPDATE funnel_pipelines SET stages = (stages::jsonb)::text")
    monkeypatch.setenv("CRM_DATABASE_URL", app.database.url)
    shown = runner.invoke(cli, ["projections", "verify", "--json"])
    assert shown.exit_code == 1, shown.output
    report: dict[str, Any] = json.loads(shown.stdout)
    tables = {t["table"]: t for m in report["read_models"] for t in m["tables"]}
    intervals = tables["funnel_intervals"]
    assert (intervals["differing"], intervals["only_live"], intervals["only_rebuilt"]) == (1, 0, 0)
    (example,) = intervals["examples"]
    assert example["key"] == {"item_id": item, "seq": seq} and example["kind"] == "differing"
    assert example["live"]["stage"] == "tampered" != example["rebuilt"]["stage"]
    assert [name for name, t in tables.items() if not t["equal"]] == ["funnel_intervals"]
    assert green_tables(store) == []
