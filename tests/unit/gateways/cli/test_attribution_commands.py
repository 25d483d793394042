"""`crm attribution` and `crm cohorts` on an SQLite log: credits under a model per campaign, channel or variant,
as a table, JSON or CSV, as of an instant; cohorts in the installation's zone or --tz; a question without an
answer exits ≠ 0 with a sentence."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner, Result

from gateways.cli.main import app
from services.application import CrmApplication
from services.settings import database_from_url
from tests.conftest import at, catch_up
from tests.support.attribution_histories import two_touch_journey

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """`attribution_histories.two_touch_journey`: 客户 won 1 000 on 6 March 2026 after 展会 and 邮件."""
    monkeypatch.setenv("CRM_DATABASE_URL", url := f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Shanghai")
    with closing(CrmApplication(database_from_url(url))) as crm:
        crm.ensure_default_pipelines(at(-30, "setup"))
        two_touch_journey(crm)
    catch_up(url)
    return url


def crm(*arguments: str) -> Result:
    return runner.invoke(app, list(arguments))


def test_credits_as_a_table_json_and_csv(url: str) -> None:
    shown = crm("attribution", "--model", "last_touch")
    assert shown.exit_code == 0 and "邮件" in shown.output and "1,000.00" in shown.output, shown.output
    report = orjson.loads(crm("attribution", "--model", "linear", "--by", "channel", "--json").output)
    assert {row["channel"]: row["credited_cents"] for row in report["rows"]} == {"event": 50_000, "email": 50_000}
    before = orjson.loads(crm("attribution", "--as-of", "2026-03-05", "--json").output)
    assert before["won_deals"] == 0
    csv = crm("attribution", "--model", "time_decay", "--half-life-days", "1", "--by", "variant", "--csv").output
    assert csv.startswith("campaign_id,name,channel,variant,credited_cents,credited_deals,model,currency")


def test_cohorts_in_the_installation_s_zone_or_another(url: str) -> None:
    report = orjson.loads(crm("cohorts", "--grain", "quarter", "--json").output)
    (event,) = [row for row in report["cohorts"] if row["channel"] == "event"]
    assert (report["zone"], event["period"], event["cac_cents"], event["clv_cents"]) == ("Asia/Shanghai", "2026-Q1",
                                                                                         60_000, 100_000)
    assert orjson.loads(crm("cohorts", "--tz", "UTC", "--json").output)["zone"] == "UTC"
    assert "event" in crm("cohorts").output and crm("cohorts", "--csv").output.startswith("channel,period")


@pytest.mark.parametrize(("arguments", "words"), [
    (("attribution", "--model", "position"), "must be one of"),
    (("attribution", "--by", "region"), "attribution is by"),
    (("attribution", "--model", "time_decay", "--half-life-days", "0"), "positive number of days"),
    (("attribution", "--half-life-days", "-1"), "positive number of days"),
    (("cohorts", "--grain", "week"), "month or quarter"),
    (("cohorts", "--tz", "Mars/Olympus"), "not a time zone"),
])
def test_questions_without_an_answer_exit_non_zero_with_a_sentence(url: str, arguments: tuple[str, ...],
                                                                   words: str) -> None:
    result = crm(*arguments)
    assert result.exit_code != 0 and words in " ".join(result.output.split()), result.output
