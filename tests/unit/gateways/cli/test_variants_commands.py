"""`crm campaign variants define | expose | stop | winner | report` on an SQLite log: each change is an event on
the campaign, each refusal exits ≠ 0 with a sentence and writes nothing; the report as of an instant, as a
table, JSON or CSV."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from uuid import UUID

import orjson
import pytest
from typer.testing import CliRunner, Result

from domain.base import Meta
from gateways.cli.main import app
from services.application import CrmApplication
from services.commands import LaunchCampaign, PlanCampaign, RecordResponse, RegisterCustomer
from services.settings import database_from_url
from tests.conftest import at, catch_up

runner = CliRunner(env={"COLUMNS": "240"})
AB = '[{"key": "A", "name": "原文案", "weight": 1}, {"key": "B", "name": "新文案", "copy": "买一送一", "weight": 1}]'


@pytest.fixture
def campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.setenv("CRM_DATABASE_URL", url := f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    with closing(CrmApplication(database_from_url(url))) as crm:
        campaign = crm.plan_campaign(PlanCampaign("春季推广", "event", "1000", source="hubspot", external_id="春-1"), at(0))
        crm.launch_campaign(LaunchCampaign(campaign), at(1))
    catch_up(url)  # the external ids read model names it by hubspot:春-1
    return url, str(campaign)


def crm(*arguments: str) -> Result:
    return runner.invoke(app, list(arguments))


def events(url: str) -> int:
    with closing(CrmApplication(database_from_url(url))) as application:
        return application.event_count()


def test_an_ab_test_from_the_command_line(campaign: tuple[str, str], tmp_path: Path) -> None:
    url, campaign_id = campaign
    (tmp_path / "ab.json").write_text(AB, encoding="utf-8")
    defined = crm("campaign", "variants", "define", "hubspot:春-1", f"@{tmp_path / 'ab.json'}", "--reason", "首轮")
    assert defined.exit_code == 0 and "2 variants defined" in defined.output, defined.output
    with closing(CrmApplication(database_from_url(url))) as application:
        customer = application.register_customer(RegisterCustomer("陈静"), at(1))
        application.record_response(RecordResponse(UUID(campaign_id), "click", customer, variant="B"),
                                    Meta.now("李娜"))
    for arguments in (("expose", campaign_id, "A", "500", "--note", "群发"), ("expose", campaign_id, "B", "480"),
                      ("stop", campaign_id, "A", "--reason", "投诉多", "--actor", "王经理"),
                      ("winner", campaign_id, "B", "--reason", "点击率高")):
        answer = crm("campaign", "variants", *arguments)
        assert answer.exit_code == 0, (arguments, answer.output)
    catch_up(url)
    table = crm("campaign", "variants", "report", campaign_id)
    assert table.exit_code == 0 and "新文案" in table.output and "not enough data" in table.output, table.output
    assert "Winner declared: B" in table.output
    report = orjson.loads(crm("campaign", "variants", "report", campaign_id, "--json").output)
    a, b = report["variants"]
    assert (a["exposures"], b["exposures"], b["responses"], a["stopped"]["actor"]) == (500, 480, 1, "王经理")
    csv = crm("campaign", "variants", "report", campaign_id, "--csv", "--table", "comparisons", "--step", "won")
    assert csv.exit_code == 0 and csv.output.startswith("step,control,variant"), csv.output
    before = orjson.loads(crm("campaign", "variants", "report", campaign_id, "--as-of", "2026-02-01", "--json").output)
    assert before["variants"] == []


def test_refusals_exit_non_zero_with_a_sentence_and_write_nothing(campaign: tuple[str, str]) -> None:
    url, campaign_id = campaign
    written = events(url)
    for arguments, words in (
            (("define", campaign_id, '[{"key": "A", "weight": 1}, {"key": "A", "weight": 1}]'), "given twice"),
            (("define", campaign_id, '[{"key": "A", "weight": 1}, {"key": "B", "weight": 0}]'), "greater than zero"),
            (("define", campaign_id, '{"key": "A"}'), "a JSON list"),
            (("define", campaign_id, "[not json"), "not valid JSON"),
            (("expose", campaign_id, "Z", "10"), "defines no variant 'Z'"),
            (("expose", campaign_id, "A", "0"), "greater than zero"),
            (("expose", campaign_id, "A", str(10**30)), "at most 1,000,000,000 per record"),
            (("define", campaign_id, '[{"key": "A", "weight": 1}, {"key": "B", "weight": 10000001}]'),
             "at most 1,000,000 parts"),
            (("define", campaign_id, '[{"key": "A\\u001fB", "weight": 1}, {"key": "C", "weight": 1}]'),
             "control character"),
            (("stop", campaign_id, "Z", "--reason", "x"), "defines no variant 'Z'"),
            (("winner", campaign_id, "A"), "defines no variant 'A'"),
            (("report", campaign_id, "--step", "clicks"), "at one of the steps"),
            (("report", "hubspot:nope"), "no campaign with id")):
        answer = crm("campaign", "variants", *arguments)
        assert answer.exit_code != 0 and words in answer.output, (arguments, answer.output)
    assert events(url) == written
