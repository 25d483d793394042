"""`crm funnel` and `crm projections` on an SQLite log made by a small demo."""

import csv
import io
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateways.cli.main import app
from services.application import CrmApplication
from services.commands import OpenDeal, RegisterCustomer, WinDeal
from services.projection_runtime.rebuild_record import Rebuild, rebuilds
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
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


def test_weeks_and_instants_without_an_offset_are_the_zones(demo_log: str) -> None:
    """`--tz America/New_York`: midnight there each week, across the DST change of 8 March 2026 (a week of 167
    hours: a fixed 168 would give 01:00 on the 15th)."""
    weekly = json.loads(crm(demo_log, "funnel", "--weekly", "2026-03-01", "2026-03-16", "--tz", "America/New_York",
                            "--json").output)
    assert [w["as_of"] for w in weekly["weeks"]] == [
        "2026-03-01T00:00:00-05:00", "2026-03-08T00:00:00-05:00", "2026-03-15T00:00:00-04:00"]


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
    store = ReadModelStore(database_from_url(demo_log))  # what `crm serve`'s /metrics shows of the rebuild
    assert [r for r in rebuilds(store) if r.name == "funnel"] == [
        Rebuild("funnel", int(head.replace(",", "")), int(head.replace(",", "")), running=False)]
    store.close()


def test_a_read_model_added_later_is_built_over_the_whole_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'late.sqlite3'}"
    writer = CrmApplication(database_from_url(url))
    writer.ensure_default_pipelines(at(-1))
    customer = writer.register_customer(RegisterCustomer("张三", "华东", "制造业", "web"), at(0))
    writer.win_deal(WinDeal(writer.open_deal(OpenDeal(customer, "ERP", "100",
                                              owner="李娜"), at(1))), at(2))
    writer.close()

    catch_up(url, "funnel", "rates", "external_ids")
    report = json.loads(crm(url, "funnel", "--as-of", "2026-03-10", "--json").output)

    assert report["won"] == 1 and report["won_value_cents"] == 10000


def _csv(result: object) -> list[dict[str, str]]:
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_stuck_items_are_capped_with_their_total(demo_log: str) -> None:
    asked = ("funnel", "--as-of", "2026-06-01", "--stuck-days", "1")
    default = json.loads(crm(demo_log, *asked, "--json").output)
    three = json.loads(crm(demo_log, *asked, "--json", "--stuck-limit", "3").output)
    text = crm(demo_log, *asked, "--stuck-limit", "3").output

    assert len(default["stuck"]) == min(20, default["stuck_total"])  # 20 unless asked
    assert three["stuck"] == default["stuck"][:3] and three["stuck_total"] == default["stuck_total"] > 3
    assert f"3 of {default['stuck_total']} shown" in text


def test_funnel_csv_is_one_row_per_stage_with_the_json_values(demo_log: str) -> None:
    report = json.loads(crm(demo_log, "funnel", "--as-of", "2026-06-01", "--json").output)
    stages = _csv(crm(demo_log, "funnel", "--as-of", "2026-06-01", "--csv"))
    stuck = _csv(crm(demo_log, "funnel", "--as-of", "2026-06-01", "--csv", "--table", "stuck", "--stuck-limit", "5"))

    assert [row["stage"] for row in stages] == [row["stage"] for row in report["rows"]]
    for parsed, original in zip(stages, report["rows"]):
        assert parsed["label"] == original["label"] and int(parsed["reached"]) == original["reached"]
        assert parsed["conversion_to_next"] == ("" if original["conversion_to_next"] is None
                                                else repr(original["conversion_to_next"]))
    assert [row["item_id"] for row in stuck] == [s["item_id"] for s in report["stuck"][:5]]


def test_an_empty_funnel_says_its_rates_are_missing_in_text_json_and_csv(demo_log: str) -> None:
    before = ("funnel", "--as-of", "2020-01-01")
    report = json.loads(crm(demo_log, *before, "--json").output)
    text = crm(demo_log, *before).output
    summary = _csv(crm(demo_log, *before, "--csv", "--table", "summary"))

    assert (report["win_rate"], report["win_rate_note"]) == (None, "no decided items (none advanced or lost)")
    assert all(row["conversion_to_next"] is None for row in report["rows"])
    assert "win rate n/a (no decided items" in text and "0.0%" not in text and "100.0%" not in text
    assert (summary[0]["win_rate"], summary[0]["win_rate_note"]) == ("", report["win_rate_note"])


def test_flow_compare_and_weekly_as_csv(demo_log: str) -> None:
    flow = _csv(crm(demo_log, "funnel", "--between", "2026-01-01", "2026-04-01", "--csv"))
    compare = _csv(crm(demo_log, "funnel", "--compare", "2026-01-01", "2026-04-01", "--csv"))
    weeks = _csv(crm(demo_log, "funnel", "--weekly", "2026-01-01", "2026-01-29", "--csv"))
    long = _csv(crm(demo_log, "funnel", "--weekly", "2026-01-01", "2026-01-29", "--csv", "--table", "stages"))

    assert flow[0]["stage"] == "lead" and int(flow[0]["entered"]) > 0
    assert int(compare[0]["items_change"]) == int(compare[0]["items_second"]) - int(compare[0]["items_first"])
    assert [w["as_of"][:10] for w in weeks] == ["2026-01-01", "2026-01-08", "2026-01-15", "2026-01-22"]
    assert "items.lead" in weeks[0] and len(long) == 4 * len(compare)


def test_a_bom_only_when_asked_and_options_that_need_csv(demo_log: str) -> None:
    excel = crm(demo_log, "funnel", "--csv", "--bom")
    lonely = crm(demo_log, "funnel", "--table", "stuck")

    assert excel.stdout.startswith("\ufeffstage,")
    assert lonely.exit_code != 0 and "go with --csv" in lonely.output
