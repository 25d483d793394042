"""`crm inspect slippage | changes | inactive | winloss` and `crm winloss` on an SQLite log in Asia/Shanghai: a
plain date is midnight there, items by title and customer, --json and --csv; bad input exits ≠ 0 with a sentence."""

from __future__ import annotations

from contextlib import closing
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from typer.testing import CliRunner, Result

from domain.base import Meta
from gateways.cli.main import app
from services.application import CrmApplication
from services.commands import LoseDeal, OpenDeal, RegisterCustomer
from services.commands.forecasts import ChangeExpectedClose
from services.settings import database_from_url
from tests.conftest import at, catch_up

runner = CliRunner(env={"COLUMNS": "200"})
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CRM_DATABASE_URL", url := f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Shanghai")
    with closing(CrmApplication(database_from_url(url))) as crm:
        crm.ensure_default_pipelines(at(-30, "setup"))
        customer = crm.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", company="甲公司"), at(0))
        deal = crm.open_deal(OpenDeal(customer, "一期", "100000", owner="李娜", expected_close=date(2026, 3, 31)), at(0))
        lost = crm.open_deal(OpenDeal(customer, "二期", "5000", owner="王伟"), at(0))
        crm.change_expected_close(ChangeExpectedClose(deal, date(2026, 4, 1), "客户预算推迟"),
                                  Meta(occurred_at=datetime(2026, 4, 1, 1, tzinfo=SHANGHAI), actor="王伟"))
        crm.lose_deal(LoseDeal(lost, "价格", "竞品甲"), Meta(occurred_at=datetime(2026, 4, 2, 9, tzinfo=SHANGHAI)))
    catch_up(url)
    return url


def crm(*arguments: str) -> Result:
    return runner.invoke(app, list(arguments))


def test_the_week_from_a_plain_date_is_the_zones(url: str) -> None:
    answer = crm("inspect", "slippage", "--from", "2026-04-01", "--to", "2026-04-08", "--json")
    assert answer.exit_code == 0, answer.output
    (deal,) = orjson.loads(answer.stdout)["deals"]
    assert (deal["deal"], deal["customer"], deal["direction"], deal["new_period"]) == ("一期", "甲公司", "pushed",
                                                                                       "2026-Q2")
    assert orjson.loads(crm("inspect", "slippage", "--from", "2026-04-01", "--to", "2026-04-08", "--tz", "UTC",
                            "--json").stdout)["deals"] == []
    shown = crm("inspect", "slippage", "--from", "2026-04-01", "--to", "2026-04-08")
    assert shown.exit_code == 0 and "客户预算推迟" in shown.stdout and "pushed" in shown.stdout
    changes = crm("inspect", "changes", "--from", "2026-04-01", "--to", "2026-04-08", "--csv", "--table", "stages")
    assert changes.exit_code == 0 and "二期,甲公司" in changes.stdout and "lost" in changes.stdout
    inactive = crm("inspect", "inactive", "--as-of", "2026-04-20", "--days", "7", "--owner", "李娜", "--json")
    assert [d["deal"] for d in orjson.loads(inactive.stdout)["deals"]] == ["一期"]


def test_winloss_by_competitor_and_its_short_name(url: str) -> None:
    for command in (("winloss",), ("inspect", "winloss")):
        answer = crm(*command, "--as-of", "2026-04-08", "--by", "competitor", "--json")
        assert answer.exit_code == 0, answer.output
        report = orjson.loads(answer.stdout)
        assert report["totals"]["lost"] == 1 and report["groups"][0]["group"] == "竞品甲"
    shown = crm("winloss", "--by", "stage")
    assert shown.exit_code == 0 and "竞品甲" in shown.stdout and "价格" in shown.stdout
    csv = crm("winloss", "--csv")
    assert csv.exit_code == 0 and csv.stdout.startswith("group,won,won_cents")


@pytest.mark.parametrize("arguments, words", [
    (("inspect", "slippage", "--from", "2026-04-08", "--to", "2026-04-01"), "must come before"),
    (("inspect", "changes", "--from", "2026-04-08", "--to", "2026-04-08"), "must come before"),
    (("inspect", "slippage", "--grain", "week"), "month or quarter"),
    (("inspect", "inactive", "--days", "-1"), "cannot be negative"),
    (("inspect", "inactive", "--days", "1000000"), "at most 36,525"),
    (("winloss", "--by", "colour"), "grouped by"),
    (("winloss", "--period", "2026-Q1", "--grain", "month"), "either"),
    (("inspect", "slippage", "--from", "yesterday"), "ISO 8601"),
    (("winloss", "--tz", "Mars/Base"), "time zone"),
])
def test_bad_input_exits_with_a_sentence(url: str, arguments: tuple[str, ...], words: str) -> None:
    answer = crm(*arguments)
    assert answer.exit_code != 0 and words in answer.output, answer.output
