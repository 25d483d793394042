"""`crm pipeline define --file` with `remind_after_days`, `crm pipeline set-reminders`, `crm reminders` (table,
JSON, CSV, --owner, --as-of) and `crm reminders run` on an SQLite log; refusals write nothing."""

from __future__ import annotations

import csv
import io
import signal
import subprocess
import sys
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from gateways.cli.main import app
from services.application import CrmApplication
from services.commands import OpenDeal, RegisterCustomer
from services.reminder_process import ReminderProcess
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0, at

runner = CliRunner(env={"COLUMNS": "200"})
RENEWAL = """
[[pipeline]]
key = "renewal"
name = "续约 / Renewals"
stages = [
    { key = "due", label = "到期 / Due", remind_after_days = [3, 7.5] },
    { key = "offer", label = "报价 / Offer" },
]
"""
REPO = Path(__file__).resolve().parents[4]


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CRM_DATABASE_URL", url := f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    return url


def _crm(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_thresholds_from_a_pipelines_file_remind_and_are_listed_by_name_customer_and_owner(url, tmp_path):
    (tmp_path / "pipelines.toml").write_text(RENEWAL, encoding="utf-8")
    _crm("pipeline", "define", "--file", str(tmp_path / "pipelines.toml"))
    assert "already defined so" in _crm("pipeline", "define", "--file", str(tmp_path / "pipelines.toml"))
    assert orjson.loads(_crm("pipeline", "show", "renewal", "--json"))["stages"][0]["remind_after_days"] == [3, 7.5]
    crm = CrmApplication(database_from_url(url))
    customer = crm.register_customer(RegisterCustomer("张三", "华东", "零售", "web", company="杭州云启科技"), at(0))
    crm.open_deal(OpenDeal(customer, "续约二期", "1000", pipeline="renewal", owner="李娜"), at(1))
    with closing(ReadModelStore(crm.database)) as store:
        ReminderProcess(crm, store, clock=lambda: T0 + timedelta(days=9)).run_step()
    crm.close()
    _crm("projections", "catch-up")

    table = _crm("reminders", "--as-of", "2026-03-10T12:00")
    assert "续约二期" in table and "杭州云启科技" in table and "李娜" in table
    found = orjson.loads(_crm("reminders", "--as-of", "2026-03-10T09:00:00+00:00", "--json"))["reminders"]
    assert [(r["threshold"], r["item"], r["customer"], r["stage"]) for r in found] == [
        ("3d", "续约二期", "杭州云启科技", "due"), ("7.5d", "续约二期", "杭州云启科技", "due")]
    rows = list(csv.DictReader(io.StringIO(_crm("reminders", "--as-of", "2026-03-10T12:00", "--csv"))))
    assert [row["threshold"] for row in rows] == ["3d", "7.5d"] and rows[0]["item"] == "续约二期"
    assert orjson.loads(_crm("reminders", "--as-of", "2026-03-10T12:00", "--owner", "王伟", "--json"))["reminders"] == []
    assert orjson.loads(_crm("reminders", "--as-of", "2026-03-02", "--json"))["reminders"] == []  # not yet emitted


@pytest.mark.parametrize("days", [["7", "3"], ["0"], ["abc"], ["4000"]])
def test_bad_thresholds_are_refused_and_nothing_is_written(url, days):
    crm = CrmApplication(database_from_url(url))
    crm.ensure_default_pipelines(at(-30, "setup"))
    before = crm.event_count()
    crm.close()
    result = runner.invoke(app, ["pipeline", "set-reminders", "sales", "proposal", *days])
    assert result.exit_code != 0 and result.output.strip()
    crm = CrmApplication(database_from_url(url))
    assert crm.event_count() == before
    crm.close()


def test_set_reminders_changes_and_removes_a_stage_thresholds(url):
    crm = CrmApplication(database_from_url(url))
    crm.ensure_default_pipelines(at(-30, "setup"))
    crm.close()
    assert "reminds after 0.5, 2 days" in _crm("pipeline", "set-reminders", "sales", "proposal", "0.5", "2")
    assert orjson.loads(_crm("pipeline", "show", "sales", "--json"))["stages"][3]["remind_after_days"] == [0.5, 2]
    assert "reminds after no days" in _crm("pipeline", "set-reminders", "sales", "proposal")
    assert "remind_after_days" not in orjson.loads(_crm("pipeline", "show", "sales", "--json"))["stages"][3]


def test_reminders_run_stops_cleanly_on_sigterm(url):
    crm = CrmApplication(database_from_url(url))
    crm.ensure_default_pipelines(at(-30, "setup"))
    crm.close()
    process = subprocess.Popen([sys.executable, "-m", "gateways.cli.main", "reminders", "run", "--poll", "0.05"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    started = next((line for line in iter(process.stdout.readline, "") if "reminders: started" in line), "")
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert started and process.returncode == 0 and "reminders: stopped" in output, output
