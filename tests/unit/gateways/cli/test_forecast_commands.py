"""`crm forecast`, `crm target`, `crm team`, `crm deal set-close | set-probability | set-category` and
`crm pipeline set-forecast` on an SQLite log: each change is an event, each refusal exits ≠ 0 with a sentence and
writes nothing; the forecast is asked as of an instant in the installation's zone."""

from __future__ import annotations

from contextlib import closing
from datetime import date
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner, Result

from gateways.cli.main import app
from services.application import CrmApplication
from services.commands import OpenDeal, RegisterCustomer
from services.settings import database_from_url
from tests.conftest import at, catch_up

runner = CliRunner(env={"COLUMNS": "200"})
TOML = """
[[pipeline]]
key = "renewal"
name = "续约 / Renewals"
stages = [
    { key = "due", label = "到期 / Due", probability = 20 },
    { key = "offer", label = "报价 / Offer", probability = 60, forecast_category = "best_case" },
]
"""


@pytest.fixture
def deal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.setenv("CRM_DATABASE_URL", url := f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Shanghai")
    with closing(CrmApplication(database_from_url(url))) as crm:
        crm.ensure_default_pipelines(at(-30, "setup"))
        customer = crm.register_customer(RegisterCustomer("客户", "华东", "制造业", "web"), at(0))
        deal = crm.open_deal(OpenDeal(customer, "项目", "100000", owner="李娜", expected_close=date(2026, 3, 31)), at(0))
    return url, str(deal)


def crm(*arguments: str) -> Result:
    return runner.invoke(app, list(arguments))


def events(url: str) -> int:
    with closing(CrmApplication(database_from_url(url))) as application:
        return application.event_count()


def test_a_forecast_follows_its_commands(deal: tuple[str, str], tmp_path: Path) -> None:
    url, deal_id = deal
    for arguments in (("deal", "set-close", deal_id, "2026-04-15", "--reason", "客户推迟"),
                      ("deal", "set-probability", deal_id, "70"), ("deal", "set-category", deal_id, "commit"),
                      ("target", "set", "owner", "李娜", "2026-Q2", "200000"), ("team", "assign", "李娜", "华东一组"),
                      ("pipeline", "set-forecast", "sales", "proposal", "--probability", "55", "--category",
                       "best_case")):
        assert crm(*arguments).exit_code == 0, (arguments, crm(*arguments).output)
    (tmp_path / "p.toml").write_text(TOML, encoding="utf-8")
    assert crm("pipeline", "define", "--file", str(tmp_path / "p.toml")).exit_code == 0
    assert "already defined so" in crm("pipeline", "define", "--file", str(tmp_path / "p.toml")).output
    catch_up(url)
    answer = crm("forecast", "--by", "team", "--json")
    assert answer.exit_code == 0, answer.output
    report = orjson.loads(answer.output)
    (row,) = report["rows"]
    assert (report["zone"], row["period"], row["group"], row["commit_cents"], row["weighted_pipeline_cents"]) == (
        "Asia/Shanghai", "2026-Q2", "华东一组", 10_000_000, 7_000_000)
    assert row["start"] == "2026-04-01T00:00:00+08:00"
    then = orjson.loads(crm("forecast", "--as-of", "2026-03-02", "--period", "2026-Q1", "--json").output)
    assert then["rows"][0]["pipeline_cents"] == 10_000_000  # before the slip: Q1, the lead stage's default
    csv = crm("forecast", "--by", "owner", "--csv")
    assert csv.output.splitlines()[1].startswith("2026-Q2,quarter,Asia/Shanghai,")
    assert "华东一组" in crm("team", "list").output and "200,000.00" in crm("target", "list").output
    assert "expected close 2026-03-31 → 2026-04-15: 客户推迟" in crm("deal", "history", deal_id, "--json").output
    assert "55 %" in crm("pipeline", "show", "sales").output


@pytest.mark.parametrize(("arguments", "words"), [
    (("forecast", "--period", "2026-W10"), "not a week"),
    (("forecast", "--by", "product"), "grouped by"),
    (("forecast", "--period", "2026-Q1", "--grain", "month"), "either --period or --grain"),
    (("deal", "set-category", "{deal}", "closed"), "only for won deals"),
    (("deal", "set-probability", "{deal}", "101"), "whole percent"),
    (("deal", "set-close", "{deal}", "31/03/2026"), "not a date"),
    (("target", "set", "owner", "李娜", "2026", "1"), "not a year"),
    (("target", "set", "region", "华东", "2026-Q1", "1"), "target scope"),
    (("team", "assign", "李娜", "a@b.cn"), "e-mail"),
    (("pipeline", "set-forecast", "sales", "won", "--probability", "1", "--category", "commit"), "unknown stage"),
])
def test_refusals_exit_non_zero_with_a_sentence_and_write_nothing(deal: tuple[str, str], arguments: tuple[str, ...],
                                                                  words: str) -> None:
    url, deal_id = deal
    before = events(url)
    catch_up(url)
    result = crm(*(deal_id if a == "{deal}" else a for a in arguments))
    assert result.exit_code != 0 and words in " ".join(result.output.split()), result.output
    assert events(url) == before
