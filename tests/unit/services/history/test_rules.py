"""`crm import` runs the commands' rules on every event: each bad row of issue 10 is refused by line and
field, and nothing is written (a bad row once wedged every read model)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
import pytest
import typer
from typer.testing import CliRunner

from domain.pipeline import pipeline_id
from gateways.cli.import_commands import import_history as import_command
from services.commands import (AssignLead, CaptureLead, ChangeStage, ContactLead, ConvertLead, LaunchCampaign, LogTouch,
                               PlanCampaign, QualifyLead, WinDeal)
from services.application import CrmApplication
from services.history import exporter, importer
from services.settings import database_from_url
from tests.conftest import at

Lines = list[dict[str, Any]]


def _app(path: Path) -> CrmApplication:
    return CrmApplication(database_from_url(f"sqlite:///{path}"))


def record_sale(crm: CrmApplication) -> None:
    """Pipelines, a campaign, a lead converted into a customer and a deal that is won, and a touch."""
    crm.ensure_default_pipelines(at(-30, "setup"))
    campaign = crm.plan_campaign(PlanCampaign("春季新品发布会", "event", "12345.67"), at(0))
    crm.launch_campaign(LaunchCampaign(campaign), at(0.5))
    lead = crm.capture_lead(CaptureLead("王芳", "华东", "互联网", "event", company="杭州云启科技有限公司", campaign_id=campaign), at(1))
    crm.assign_lead(AssignLead(lead, "李娜", "round_robin"), at(1.5))
    crm.contact_lead(ContactLead(lead, "phone", "首次沟通"), at(2))
    crm.qualify_lead(QualifyLead(lead, "预算明确"), at(3))
    customer, deal = crm.convert_lead(ConvertLead(lead, "云服务采购", "80000.50", "CNY"), at(4))
    crm.change_stage(ChangeStage(deal, "first_contact", "约了演示"), at(5))
    crm.win_deal(WinDeal(deal), at(6))
    crm.log_touch(LogTouch(customer, "phone", "outbound", "回访"), at(7))


@pytest.fixture
def history(tmp_path: Path) -> Lines:
    source = _app(tmp_path / "source.db")
    record_sale(source)
    with (tmp_path / "history.jsonl").open("wb") as out:
        exporter.export_history(source, out)
    source.close()
    return [orjson.loads(line) for line in (tmp_path / "history.jsonl").read_bytes().splitlines()]


def _index(lines: Lines, event_type: str) -> int:
    return next(i for i, line in enumerate(lines) if line["type"] == event_type)


def _write(path: Path, lines: Lines) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def _refused(target: CrmApplication, path: Path, batch: int = 3) -> str:
    with pytest.raises(importer.ImportRefused) as refused:
        importer.import_history(target, path, batch=batch)
    assert target.event_count() == 0
    return str(refused.value)


def _following(lines: Lines, index: int, event_type: str, **data: Any) -> dict[str, Any]:
    """A new event of line `index`'s aggregate, one version after its last one in `lines`."""
    subject = lines[index]["subject"]
    version = max(line["version"] for line in lines if line["subject"] == subject) + 1
    template = lines[index]["data"]
    return {"type": event_type, "subject": subject, "version": version,
            "data": {"occurred_at": "2026-03-20T09:00:00Z", "actor": template["actor"],
                     "correlation_id": template["correlation_id"], **data}}


def _lead_starting_with_assigned(lines: Lines) -> tuple[Lines, int, str]:
    """A win that predates first contact: the lead's Captured is gone, its Assigned is version 1."""
    captured = _index(lines, "crm.Lead.Captured")
    lead = lines[captured]["subject"]
    kept = [dict(line) for i, line in enumerate(lines) if i != captured]
    for line in kept:
        if line["subject"] == lead:
            line["version"] -= 1
    return kept, _index(kept, "crm.Lead.Assigned"), "type"


def _set(event_type: str, field: str, value: Any) -> Callable[[Lines], tuple[Lines, int, str]]:
    def change(lines: Lines) -> tuple[Lines, int, str]:
        index = _index(lines, event_type)
        lines[index]["data"][field] = value
        return lines, index, field
    return change


def _won_then_lost(lines: Lines) -> tuple[Lines, int, str]:
    won = _index(lines, "crm.Deal.Won")
    lines.append(_following(lines, won, "crm.Deal.Lost", from_stage="first_contact", reason="预算取消",
                            competitor=""))
    return lines, len(lines) - 1, "type"


BAD_ROWS = {
    "a lead whose first event is Assigned": (_lead_starting_with_assigned,
                                             "the first event of a lead must be crm.Lead.Captured"),
    "unknown stage": (_set("crm.Deal.StageChanged", "to_stage", "teleported"),
                      "unknown stage 'teleported' in pipeline 'sales'"),
    "negative amount": (_set("crm.Deal.Opened", "amount", "-100.00"), "amount must not be negative"),
    "won before opened": (_set("crm.Deal.Won", "occurred_at", "2026-01-01T09:00:00Z"),
                          "is before this Deal's last event"),
    "won then lost without reopen": (_won_then_lost, "cannot lose it: deal is won; reopen it first"),
    "unknown pipeline": (_set("crm.Deal.Opened", "pipeline", "enterprise"),
                         "no pipeline 'enterprise' in the file or the log"),
    "unknown channel": (_set("crm.Customer.TouchLogged", "channel", "fax"), "unknown touch channel 'fax'"),
    "lowercase currency": (_set("crm.Deal.Opened", "currency", "cny"), "currency 'cny' must be a three-letter"),
    "a deal for a customer that does not exist": (_set("crm.Deal.Opened", "customer_id", str(uuid4())),
                                                  "in the file or the log"),
}


def _assert_refused_by_line_and_field(target: CrmApplication, tmp_path: Path, history: Lines,
                                      make: Callable[[Lines], tuple[Lines, int, str]], reason: str) -> None:
    lines, index, field = make(history)

    message = _refused(target, _write(tmp_path / "bad.jsonl", lines))

    assert message.startswith(f"line {index + 1}: {lines[index]['type']} of {lines[index]['subject']}, "
                              f"field {field!r}: "), message
    assert reason in message


@pytest.mark.parametrize("row", BAD_ROWS)
def test_each_bad_row_of_the_issue_is_refused_by_line_and_field_and_nothing_is_written(history, target, tmp_path,
                                                                                      row) -> None:
    _assert_refused_by_line_and_field(target, tmp_path, history, *BAD_ROWS[row])


def _pipeline_key(key: str) -> Callable[[Lines], tuple[Lines, int, str]]:
    def change(lines: Lines) -> tuple[Lines, int, str]:
        index = next(i for i, line in enumerate(lines) if line["data"].get("key") == "marketing")
        subject = lines[index]["subject"]
        for line in lines:
            if line["subject"] == subject:
                line["subject"] = str(pipeline_id(key))
        lines[index]["data"]["key"] = key
        return lines, index, "key"
    return change


def _deal_properties(changes: Any) -> Callable[[Lines], tuple[Lines, int, str]]:
    """A Deal.PropertiesChanged line after the deal's last event."""
    def change(lines: Lines) -> tuple[Lines, int, str]:
        lines.append(_following(lines, _index(lines, "crm.Deal.Opened"), "crm.Deal.PropertiesChanged",
                                changes=changes))
        return lines, len(lines) - 1, "changes"
    return change


# Rules the commands (or every event's Meta) check that the import once did not: the same domain functions now.
COMMAND_RULES = {
    "an e-mail address as a property": (_deal_properties({"manager": "li@example.com"}),
                                        "property manager must not hold an e-mail address or a phone number"),
    "a property name that is no name": (_deal_properties({"Product Line": "x"}), "must be 1–40 lower-case letters"),
    "a reserved property name": (_deal_properties({"owner": "李娜"}), "is reserved"),
    "a property that is no text": (_deal_properties({"product": 5}), "must be text"),
    "contact details in a region": (_set("crm.Customer.Registered", "region", "华东 wang@example.com"),
                                    "region must not hold an e-mail address or a phone number"),
    "a phone number as a lead's industry": (_set("crm.Lead.Captured", "industry", "+86 138 0013 8000"),
                                            "industry must not hold an e-mail address or a phone number"),
    "a phone number as a customer's external id": (
        _set("crm.Customer.Registered", "external_id", "hubspot:+86 138 0013 8000"),
        "a customer's external id must not be an e-mail address or a phone number"),
    "an expected close in year 226": (_set("crm.Deal.Opened", "expected_close", "0226-06-30"),
                                      "expected_close must be between 1900-01-01 and 2999-12-31 (UTC)"),
    "business time in year 226": (_set("crm.Campaign.Planned", "occurred_at", "0226-03-01T09:00:00+00:00"),
                                  "occurred_at must be between 1900-01-01 and 2999-12-31 (UTC)"),
    "a blank actor": (_set("crm.Customer.TouchLogged", "actor", "  "), "actor must not be empty"),
    "a pipeline key that is no key": (_pipeline_key("Marketing Team"),
                                      "stage key 'Marketing Team' must be lower-case letters"),
}


@pytest.mark.parametrize("row", COMMAND_RULES)
def test_what_the_command_would_refuse_is_refused_by_line_and_field(history, target, tmp_path, row) -> None:
    _assert_refused_by_line_and_field(target, tmp_path, history, *COMMAND_RULES[row])


def test_the_unchanged_history_imports(history, target, tmp_path) -> None:
    assert importer.import_history(target, _write(tmp_path / "good.jsonl", history), batch=3) == len(history)


def test_a_good_property_change_imports(history, target, tmp_path) -> None:
    lines, _, _ = _deal_properties({"product": "云主机 Pro", "team": ""})(history)

    assert importer.import_history(target, _write(tmp_path / "good.jsonl", lines), batch=3) == len(lines)


def test_a_field_the_command_derives_must_match_the_state(history, target, tmp_path) -> None:
    won = _index(history, "crm.Deal.Won")
    history[won]["data"]["from_stage"] = "proposal"  # the deal was in first_contact

    message = _refused(target, _write(tmp_path / "bad.jsonl", history))

    assert message.endswith("field 'from_stage': from_stage 'proposal' is not the deal's stage 'first_contact'")


def test_a_reference_to_an_aggregate_of_another_kind_is_refused(history, target, tmp_path) -> None:
    opened = _index(history, "crm.Deal.Opened")
    history[opened]["data"]["customer_id"] = history[_index(history, "crm.Lead.Captured")]["subject"]

    message = _refused(target, _write(tmp_path / "bad.jsonl", history))

    assert message.startswith(f"line {opened + 1}:") and "is a lead, not a customer" in message


def test_a_forward_reference_to_an_aggregate_of_another_kind_is_refused_when_that_one_is_created(
        history, target, tmp_path) -> None:
    converted = _index(history, "crm.Lead.Converted")  # names its customer and deal before they are created
    customer = history[converted]["data"]["customer_id"]
    history[converted]["data"]["deal_id"] = customer

    message = _refused(target, _write(tmp_path / "bad.jsonl", history))

    assert message == (f"line {converted + 1}: crm.Lead.Converted of {history[converted]['subject']}, "
                       f"field 'deal_id': {customer} is a customer, not a deal")


def test_a_reference_that_never_resolves_is_named_before_a_later_bad_line(history, target, tmp_path) -> None:
    converted = _index(history, "crm.Lead.Converted")  # names its customer and deal before they are created
    history[converted]["data"]["deal_id"] = str(uuid4())
    history[_index(history, "crm.Customer.TouchLogged")]["data"]["channel"] = "fax"  # a later bad line

    message = _refused(target, _write(tmp_path / "bad.jsonl", history), batch=100)

    assert message.startswith(f"line {converted + 1}: crm.Lead.Converted") and "field 'deal_id': no deal" in message


@pytest.mark.parametrize("batch", [3, 100])
def test_a_bad_line_is_named_when_an_earlier_line_waits_for_a_creation_after_it_in_the_same_chunk(
        history, target, tmp_path, batch) -> None:
    registered = _index(history, "crm.Customer.Registered")  # after the lead's Converted, before the deal's Opened
    history[registered]["data"]["channel"] = "fax"

    message = _refused(target, _write(tmp_path / "bad.jsonl", history), batch=batch)

    assert message.startswith(f"line {registered + 1}: crm.Customer.Registered") and "field 'channel'" in message


def test_a_bad_creation_is_named_rather_than_the_lines_that_waited_for_it(history, target, tmp_path) -> None:
    opened = _index(history, "crm.Deal.Opened")  # after the lead's Converted, which names the deal
    history[opened]["data"]["stage"] = "teleported"

    message = _refused(target, _write(tmp_path / "bad.jsonl", history))

    assert message.startswith(f"line {opened + 1}: crm.Deal.Opened") and "field 'stage'" in message


def test_events_appended_to_an_aggregate_in_the_log_follow_its_state_there(history, target, tmp_path) -> None:
    importer.import_history(target, _write(tmp_path / "good.jsonl", history))
    before = target.event_count()
    won = _index(history, "crm.Deal.Won")
    lost = _following(history, won, "crm.Deal.Lost", from_stage="first_contact", reason="预算取消", competitor="")

    with pytest.raises(importer.ImportRefused, match="^line 1: .*cannot lose it: deal is won"):
        importer.import_history(target, _write(tmp_path / "more.jsonl", [lost]))
    reopened = _following(history, won, "crm.Deal.Reopened", stage="proposal", reason="客户回心转意")
    lost["version"] += 1
    lost["data"]["from_stage"], lost["data"]["occurred_at"] = "proposal", "2026-03-21T09:00:00Z"
    importer.import_history(target, _write(tmp_path / "more.jsonl", [reopened, lost]))

    assert target.event_count() == before + 2


cli = typer.Typer()
cli.command("import")(import_command)
cli.command("noop")(lambda: None)


def test_crm_import_of_a_file_breaking_a_rule_exits_non_zero_naming_line_field_and_reason(history, tmp_path,
                                                                                        monkeypatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("COLUMNS", "300")
    lines, index, _ = _set("crm.Deal.Opened", "amount", "-1")(history)

    result = CliRunner().invoke(cli, ["import", str(_write(tmp_path / "bad.jsonl", lines))])

    assert result.exit_code == 1
    assert f"line {index + 1}: crm.Deal.Opened" in result.output and "field 'amount'" in result.output
    assert "nothing was imported" in result.output
    assert _app(tmp_path / "cli.db").event_count() == 0


def test_text_with_a_nul_character_is_refused_as_the_command_refuses_it(history, target, tmp_path) -> None:
    touch = _index(history, "crm.Customer.TouchLogged")
    history[touch]["data"]["summary"] = "回访\x00"

    message = _refused(target, _write(tmp_path / "bad.jsonl", history))

    assert message.endswith("field 'summary': summary must not contain NUL characters")
