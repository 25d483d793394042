"""The `crm` command line on an SQLite file: the demo, a deal's audit trail, and refusals."""

import csv
import io
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from uuid import UUID

import pytest
from typer.testing import CliRunner

from domain.base import Meta
from gateways.cli.common import crm_application
from gateways.cli.demo_commands import months_before
from gateways.cli.main import app
from services.commands import LoseDeal, OpenDeal, RegisterCustomer, ReopenDeal

runner = CliRunner()


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    return url


def test_demo_prints_the_funnel_now_and_six_months_earlier(sqlite_url: str) -> None:
    result = runner.invoke(app, ["demo", "--leads", "400", "--days", "365"])

    assert result.exit_code == 0, result.output
    assert "Sales funnel now" in result.output and "Sales funnel 6 months earlier" in result.output
    for label in ("潜在客户获取 / Lead", "商务谈判 / Negotiation", "签订合同 / Contract signed"):
        assert result.output.count(label) == 2
    assert re.search(r"Recorded [\d,]+ events", result.output)


def test_demo_is_reproducible_and_does_not_duplicate_an_existing_log(sqlite_url: str) -> None:
    first = runner.invoke(app, ["demo", "--leads", "200", "--days", "200", "--seed", "3"])
    again = runner.invoke(app, ["demo", "--leads", "200", "--days", "200", "--seed", "3"])
    regenerated = runner.invoke(app, ["demo", "--leads", "200", "--days", "200", "--seed", "3", "--reset"])

    count = re.search(r"Recorded ([\d,]+) events", first.output).group(1)
    assert f"already holds {count} events" in again.output
    assert f"Recorded {count} events" in regenerated.output


def test_deal_history_shows_each_move_with_who_and_why(sqlite_url: str) -> None:
    demo = runner.invoke(app, ["demo", "--leads", "300", "--days", "300"])
    deal_id = re.search(r"crm deal history ([0-9a-f-]{36})", demo.output).group(1)

    result = runner.invoke(app, ["deal", "history", deal_id])

    assert result.exit_code == 0, result.output
    assert "Opened" in result.output and "Won" in result.output
    assert "潜在客户获取 / Lead → 初步接触 / First contact" in result.output
    assert "回款计划已确认" in result.output  # the reason given when it was won


def _lost_deal(reopened: bool = False) -> UUID:
    """A deal of 1000 opened and lost (and reopened), on the log CRM_DATABASE_URL names."""
    with crm_application() as crm:
        crm.ensure_default_pipelines()
        customer = crm.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", company="华为"), Meta())
        deal = crm.open_deal(OpenDeal(customer, "增购", "1000", owner="李娜"), Meta())
        crm.lose_deal(LoseDeal(deal, "价格"), Meta())
        if reopened:
            crm.reopen_deal(ReopenDeal(deal, "客户回来了"), Meta())
    return deal


def test_deal_history_shows_the_terminal_stage_a_reopened_deal_left(sqlite_url: str) -> None:
    deal = _lost_deal(reopened=True)

    result = runner.invoke(app, ["deal", "history", str(deal)])

    assert result.exit_code == 0, result.output
    assert "输单 / Lost → 潜在客户获取 / Lead" in result.output


def test_unknown_deal_exits_non_zero_with_a_message(sqlite_url: str) -> None:
    result = runner.invoke(app, ["deal", "history", "00000000-0000-4000-8000-000000000000"])

    assert result.exit_code == 1
    assert "no deal with id 00000000-0000-4000-8000-000000000000" in result.output


def test_reset_refuses_to_touch_a_postgresql_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", "postgresql://crm:crm@127.0.0.1:1/crm")

    result = runner.invoke(app, ["demo", "--reset"])

    assert result.exit_code == 1
    assert "--reset only deletes an SQLite file" in result.output


def test_a_bad_database_url_exits_non_zero_with_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", "mysql://nope")

    result = runner.invoke(app, ["demo"])

    assert result.exit_code == 1
    assert "unsupported CRM_DATABASE_URL scheme 'mysql'" in result.output


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (datetime(2026, 11, 24, 9, tzinfo=timezone.utc), datetime(2026, 5, 24, 9, tzinfo=timezone.utc)),
        (datetime(2026, 8, 31, tzinfo=timezone.utc), datetime(2026, 2, 28, tzinfo=timezone.utc)),
        (datetime(2026, 3, 15, tzinfo=timezone.utc), datetime(2025, 9, 15, tzinfo=timezone.utc)),
    ],
)
def test_six_months_before_is_calendar_months(instant: datetime, expected: datetime) -> None:
    assert months_before(instant, 6) == expected


def test_receipts_prune_removes_only_old_answers(sqlite_url: str) -> None:
    from services.application import CrmApplication
    from services.command_receipts import Receipt, now_micros
    from services.settings import database_from_url

    crm = CrmApplication(database_from_url(sqlite_url))
    week = 7 * 86_400 * 1_000_000
    crm.keep_refusal(Receipt("李娜", "old", "p", 404, b"{}", {}, recorded_at=now_micros() - 2 * week))
    crm.keep_refusal(Receipt("李娜", "new", "p", 404, b"{}", {}))
    crm.close()

    result = runner.invoke(app, ["receipts", "prune", "--older-than-days", "7"])
    refused = runner.invoke(app, ["receipts", "prune", "--older-than-days", "0"])

    assert result.exit_code == 0 and "Removed 1 answer(s)" in result.output, result.output
    assert refused.exit_code != 0


def test_deal_history_as_json_and_csv(sqlite_url: str) -> None:
    deal = _lost_deal()

    data = json.loads(runner.invoke(app, ["deal", "history", str(deal), "--json"]).output)
    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, ["deal", "history", str(deal), "--csv"]).stdout)))

    assert (data["status"], data["owner"], [e["event"] for e in data["entries"]]) == ("lost", "李娜", ["Opened", "Lost"])
    assert [(row["version"], row["event"], row["detail"]) for row in rows] == [
        (str(e["version"]), e["event"], e["detail"]) for e in data["entries"]]
