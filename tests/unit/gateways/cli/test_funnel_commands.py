"""`crm funnel` and `crm projections` on an SQLite log made by a small demo."""

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateways.cli.main import app
from services.application import CrmApplication
from services.commands import OpenDeal, RegisterCustomer, WinDeal
from services.settings import database_from_url
from tests.conftest import at, catch_up

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'crm.sqlite3'}"
    result = runner.invoke(app, ["demo", "--leads", "600", "--days", "400"], env={"CRM_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    return url


def crm(url: str, *args: str) -> object:
    return runner.invoke(app, list(args), env={"CRM_DATABASE_URL": url, "COLUMNS": "200"})


def test_funnel_json_from_the_read_model_equals_the_replay(demo_log: str) -> None:
    read_model = crm(demo_log, "funnel", "--as-of", "2026-06-01T12:00", "--json")
    replay = crm(demo_log, "funnel", "--as-of", "2026-06-01T12:00", "--json", "--replay")

    assert read_model.exit_code == 0, read_model.output
    report = json.loads(read_model.output)
    assert report == json.loads(replay.output)
    assert report["as_of"] == "2026-06-01T12:00:00+00:00"
    assert [row["stage"] for row in report["rows"]][:2] == ["lead", "first_contact"]
    assert report["won"] > 0 and report["rows"][0]["reached"] >= report["rows"][1]["reached"] > 0


def test_funnel_table_shows_labels_and_the_summary_line(demo_log: str) -> None:
    result = crm(demo_log, "funnel", "--pipeline", "marketing", "--as-of", "2026-06-01")

    assert result.exit_code == 0, result.output
    assert "留资 / Captured" in result.output and "合格线索 / Qualified" in result.output
    assert re.search(r"win rate \d+\.\d%", result.output)


def test_owner_filter_narrows_the_funnel(demo_log: str) -> None:
    everyone = json.loads(crm(demo_log, "funnel", "--json").output)
    one = json.loads(crm(demo_log, "funnel", "--json", "--owner", "陈杰").output)

    assert 0 < one["rows"][0]["reached"] < everyone["rows"][0]["reached"]


def test_between_compare_and_weekly(demo_log: str) -> None:
    flow = json.loads(crm(demo_log, "funnel", "--between", "2026-01-01", "2026-04-01", "--json").output)
    compare = json.loads(crm(demo_log, "funnel", "--compare", "2026-01-01", "2026-04-01", "--json").output)
    weekly = json.loads(crm(demo_log, "funnel", "--weekly", "2026-01-01", "2026-01-29", "--json").output)

    assert flow["flow"][0]["stage"] == "lead" and flow["flow"][0]["entered"] > 0
    assert compare["first"]["as_of"].startswith("2026-01-01") and compare["second"]["as_of"].startswith("2026-04-01")
    assert [w["as_of"][:10] for w in weekly["weeks"]] == ["2026-01-01", "2026-01-08", "2026-01-15", "2026-01-22"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["funnel", "--as-of", "yesterday"], "not an ISO 8601 date"),
        (["funnel", "--pipeline", "partners"], "unknown pipeline 'partners'"),
        (["funnel", "--weekly", "2026-02-01", "2026-01-01"], "must come after"),
        (["projections", "rebuild", "nonsense"], "unknown read model"),
    ],
)
def test_bad_input_exits_non_zero_with_a_message(demo_log: str, args: list[str], message: str) -> None:
    result = crm(demo_log, *args)

    assert result.exit_code != 0
    assert message in result.output


def test_rebuild_and_status_report_positions_at_the_head(demo_log: str) -> None:
    rebuilt = crm(demo_log, "projections", "rebuild", "funnel")
    status = crm(demo_log, "projections", "status")

    assert rebuilt.exit_code == 0 and "Rebuilt funnel" in rebuilt.output
    head = re.search(r"over ([\d,]+) events", rebuilt.output).group(1)
    assert re.search(rf"funnel\s+│\s+{head}\s+│\s+{head}\s+│\s+0", status.output), status.output


def test_a_read_model_added_later_is_built_over_the_whole_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'late.sqlite3'}"
    writer = CrmApplication(database_from_url(url))
    writer.ensure_default_pipelines(at(-1))
    customer = writer.register_customer(RegisterCustomer("张三", "华东", "制造业", "web"), at(0))
    writer.win_deal(WinDeal(writer.open_deal(OpenDeal(customer, "ERP", "100",
                                              owner="李娜"), at(1))), at(2))
    writer.close()

    catch_up(url, "funnel", "rates")
    report = json.loads(crm(url, "funnel", "--as-of", "2026-03-10", "--json").output)

    assert report["won"] == 1 and report["won_value_cents"] == 10000
