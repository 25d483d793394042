"""History out and back in: `crm export` → `crm import` on SQLite files, and every refusal writes nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
import typer
from typer.testing import CliRunner

from gateways.cli.import_commands import export_history, import_history
from services.commands import (AssignLead, CaptureLead, ChangeConsent, ChangeStage, ContactLead, ConvertLead,
                               LaunchCampaign, OpenTicket, PlanCampaign, QualifyLead, RateTicket, RecordResponse,
                               ResolveTicket, WinDeal)
from services.application import CrmApplication
from services.history import event_lines, exporter, importer
from services.settings import database_from_url
from tests.conftest import at
from tests.support.history_of_every_event import record_every_event

runner = CliRunner()


def _app(path: Path) -> CrmApplication:
    return CrmApplication(database_from_url(f"sqlite:///{path}"))


@pytest.fixture
def source(tmp_path: Path) -> Iterator[CrmApplication]:
    """A log touching every kind of field: Chinese text, Decimal, date, bool, int, optional UUID, stage lists."""
    crm = _app(tmp_path / "source.db")
    crm.ensure_default_pipelines(at(-30, "setup"))
    campaign = crm.plan_campaign(PlanCampaign("春季新品发布会", "event", "12345.67"), at(0))
    crm.launch_campaign(LaunchCampaign(campaign), at(0.5))
    lead = crm.capture_lead(CaptureLead("王芳", "华东", "互联网", "event", company="杭州云启科技有限公司"), at(1))
    crm.record_response(RecordResponse(campaign, "registration", lead_id=lead), at(1))
    crm.assign_lead(AssignLead(lead, "李娜", "round_robin"), at(1.5))
    crm.contact_lead(ContactLead(lead, "phone", "首次沟通，了解需求"), at(2))
    crm.qualify_lead(QualifyLead(lead, "预算明确"), at(3))
    customer, deal = crm.convert_lead(ConvertLead(lead, "云服务采购", "80000.50", "CNY",
                                                  expected_close=date(2026, 6, 30)), at(4))
    crm.change_consent(ChangeConsent(customer, True), at(4.5))
    crm.change_stage(ChangeStage(deal, "first_contact", "客户回电，约了演示"), at(5))
    crm.win_deal(WinDeal(deal, "回款计划已确认"), at(6))
    ticket = crm.open_ticket(OpenTicket(customer, "系统登录失败", "phone", priority="high"), at(7))
    crm.resolve_ticket(ResolveTicket(ticket, "已远程协助处理"), at(8))
    crm.rate_ticket(RateTicket(ticket, 5, "服务很及时"), at(9))
    yield crm
    crm.close()


def _export(app: CrmApplication, path: Path) -> Path:
    with path.open("wb") as out:
        exporter.export_history(app, out)
    return path


def _history(app: CrmApplication) -> list[dict[str, Any]]:
    """Every event of the log in order, as its type and fields without the recorded timestamp."""
    return [{"type": type(e), **{k: v for k, v in vars(e).items() if k != "timestamp"}} for _, e in app.read_log()]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _write(path: Path, records: list[Any]) -> Path:
    path.write_bytes(b"".join(r if isinstance(r, bytes) else orjson.dumps(r) + b"\n" for r in records))
    return path


def test_export_then_import_into_an_empty_log_gives_identical_events(source, target, tmp_path) -> None:
    file = _export(source, tmp_path / "history.jsonl")

    count = importer.import_history(target, file, batch=4)

    assert count == source.event_count() == 19
    assert _history(target) == _history(source)


def test_every_event_type_exports_imports_and_exports_again_to_the_same_file(target, tmp_path) -> None:
    every = _app(tmp_path / "every.db")
    record_every_event(every)
    file, expected = _export(every, tmp_path / "every.jsonl"), _history(every)
    every.close()

    importer.import_history(target, file, batch=7)

    assert _history(target) == expected
    assert _export(target, tmp_path / "again.jsonl").read_bytes() == file.read_bytes()


def test_batches_cut_in_chunks_of_any_size_import_the_same_log(source, target, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(importer, "KEY_CHUNK", 3)  # batches of 7 are written in chunks of 3, 3 and 1

    importer.import_history(target, _export(source, tmp_path / "history.jsonl"), batch=7)

    assert _history(target) == _history(source)


def test_a_file_changed_after_its_check_stops_the_import_before_the_batch_that_changed(source, target,
                                                                                          tmp_path) -> None:
    file = _export(source, tmp_path / "history.jsonl")
    with file.open("rb") as checked_file:
        checked = importer.check_history(target, checked_file, batch=5)
    lines = _lines(file)
    lines[7]["data"]["actor"] = "冒名者"
    changed = _write(tmp_path / "changed.jsonl", lines)

    with changed.open("rb") as source_file, pytest.raises(importer.FileChanged, match="5 events were imported"):
        importer.HistoryWriter(target, batch=5).write(source_file, checked, lambda done: None)

    assert target.event_count() == 5


def test_a_file_cut_short_after_its_check_says_how_much_was_imported(source, target, tmp_path) -> None:
    file = _export(source, tmp_path / "history.jsonl")
    with file.open("rb") as checked_file:
        checked = importer.check_history(target, checked_file, batch=5)
    _write(file, _lines(file)[:10])

    with file.open("rb") as cut, pytest.raises(importer.FileChanged, match="ended after 10 of the 19"):
        importer.HistoryWriter(target, batch=5).write(cut, checked, lambda done: None)

    assert target.event_count() == 10


def test_chinese_text_is_written_as_utf8_and_read_back_intact(source, target, tmp_path) -> None:
    file = _export(source, tmp_path / "history.jsonl")
    importer.import_history(target, file)

    assert "首次沟通，了解需求".encode() in file.read_bytes()
    contacted = next(e for _, e in target.read_log() if type(e).__qualname__ == "Lead.Contacted")
    assert contacted.summary == "首次沟通，了解需求"


def test_imported_personal_data_is_sealed_in_the_log_like_any_other(source, target, tmp_path) -> None:
    importer.import_history(target, _export(source, tmp_path / "history.jsonl"))

    captured = next(n for n in target.recorder.select_notifications(1, 100) if n.topic.endswith("Lead.Captured"))
    assert "王芳".encode() not in captured.state and b"pii:v1:" in captured.state
    assert target.mapper.to_domain_event(captured).name == "王芳"


def test_a_line_is_type_subject_version_and_the_events_own_fields(source, tmp_path) -> None:
    lines = _lines(_export(source, tmp_path / "history.jsonl"))

    won = next(line for line in lines if line["type"] == "crm.Deal.Won")
    assert won["version"] == 3 and UUID(won["subject"])
    assert won["data"] == {"occurred_at": "2026-03-07T09:00:00Z", "actor": "李娜",
                           "correlation_id": won["data"]["correlation_id"], "from_stage": "first_contact",
                           "note": "回款计划已确认"}


def test_imported_events_keep_business_time_and_the_time_they_were_recorded(source, target, tmp_path) -> None:
    file = _export(source, tmp_path / "history.jsonl")

    importer.import_history(target, file)

    events, originals = [e for _, e in target.read_log()], [e for _, e in source.read_log()]
    assert [e.occurred_at for e in events] == [e.occurred_at for e in originals]
    assert [e.timestamp for e in events] == [e.timestamp for e in originals]  # a back-dated entry stays late


def test_lines_without_their_recorded_time_are_recorded_now(source, target, tmp_path) -> None:
    lines = _lines(_export(source, tmp_path / "history.jsonl"))
    for line in lines:
        del line["recorded_at"]  # a file exported before `recorded_at` existed
    before = datetime.now(timezone.utc)

    importer.import_history(target, _write(tmp_path / "old.jsonl", lines))

    events = [e for _, e in target.read_log()]
    assert [e.occurred_at for e in events] == [e.occurred_at for _, e in source.read_log()]
    assert all(e.timestamp >= before for e in events)


def test_a_recorded_time_without_a_zone_is_refused_by_number(source, target, tmp_path) -> None:
    lines = _lines(_export(source, tmp_path / "history.jsonl"))
    lines[4]["recorded_at"] = "2026-03-01T09:00:00"

    assert _refused(target, _write(tmp_path / "bad.jsonl", lines)) == \
        "line 5: recorded_at: '2026-03-01T09:00:00' is not an ISO 8601 time with a zone"


def test_the_log_keeps_the_files_order_across_batches(source, target, tmp_path) -> None:
    lines = _lines(_export(source, tmp_path / "history.jsonl"))
    reordered = _write(tmp_path / "reordered.jsonl", lines[3:] + lines[:3])  # the pipelines last

    importer.import_history(target, reordered, batch=5)

    logged = [(n, str(e.originator_id), e.originator_version) for n, e in target.read_log()]
    assert logged == [(n, line["subject"], line["version"]) for n, line in enumerate(lines[3:] + lines[:3], 1)]


def _refused(target: CrmApplication, file: Path) -> str:
    with pytest.raises(importer.ImportRefused) as refused:
        importer.import_history(target, file, batch=2)
    assert target.event_count() == 0
    return str(refused.value)


def test_a_line_that_is_not_json_is_refused_by_number_and_nothing_is_written(source, target, tmp_path) -> None:
    lines = _lines(_export(source, tmp_path / "history.jsonl"))
    file = _write(tmp_path / "bad.jsonl", [*lines[:5], b'{"type": "crm.Deal.Won", \n', *lines[5:]])

    assert _refused(target, file).startswith("line 6: not valid JSON")


def test_a_line_naming_a_key_twice_is_refused_by_number(source, target, tmp_path) -> None:
    lines = _lines(_export(source, tmp_path / "history.jsonl"))
    opened = next(i for i, line in enumerate(lines) if line["type"] == "crm.Deal.Opened")
    twice = orjson.dumps(lines[opened]).replace(b'"amount":', b'"amount":"-5","amount":', 1) + b"\n"
    file = _write(tmp_path / "bad.jsonl", [*lines[:opened], twice, *lines[opened + 1:]])

    assert _refused(target, file) == (f"line {opened + 1}: not accepted JSON (the key 'amount' appears more than once "
                                      "in one JSON object (each key may appear once))")


def test_an_unknown_event_type_is_refused_by_number(source, target, tmp_path) -> None:
    lines = _lines(_export(source, tmp_path / "history.jsonl"))
    lines[7]["type"] = "crm.Deal.Teleported"

    assert _refused(target, _write(tmp_path / "bad.jsonl", lines)) == "line 8: unknown event type 'crm.Deal.Teleported'"


def test_a_field_that_does_not_convert_is_refused_by_number(source, target, tmp_path) -> None:
    lines = _lines(_export(source, tmp_path / "history.jsonl"))
    opened = next(i for i, line in enumerate(lines) if line["type"] == "crm.Deal.Opened")
    lines[opened]["data"]["amount"] = "八万"

    assert _refused(target, _write(tmp_path / "bad.jsonl", lines)) == \
        f"line {opened + 1}: field 'amount': '八万' is not a decimal number"


def test_a_missing_field_is_refused_by_number(source, target, tmp_path) -> None:
    lines = _lines(_export(source, tmp_path / "history.jsonl"))
    del lines[10]["data"]["actor"]

    assert _refused(target, _write(tmp_path / "bad.jsonl", lines)) == "line 11: data lacks actor"


def test_a_version_gap_within_the_file_is_refused_by_number(source, target, tmp_path) -> None:
    lines = _lines(_export(source, tmp_path / "history.jsonl"))
    won = next(i for i, line in enumerate(lines) if line["type"] == "crm.Deal.Won")
    del lines[won - 1]  # the deal's StageChanged (version 2) is lost: Won is version 3

    message = _refused(target, _write(tmp_path / "bad.jsonl", lines))

    assert message == (f"line {won}: crm.Deal.Won of {lines[won - 1]['subject']} has version 3, "
                       "but version 1 is the last earlier in the file: expected version 2")


def test_events_the_log_already_holds_are_refused_and_nothing_more_is_written(source, tmp_path) -> None:
    file = _export(source, tmp_path / "history.jsonl")
    first = _lines(file)[0]
    before = source.event_count()

    with pytest.raises(importer.ImportRefused) as refused:
        importer.import_history(source, file)

    assert str(refused.value) == (f"line 1: crm.Pipeline.Defined of {first['subject']} has version 1, "
                                  "but version 1 is the last in the log: expected version 2")
    assert source.event_count() == before


def test_an_aggregate_whose_first_events_are_missing_is_refused(source, target, tmp_path) -> None:
    lines = _lines(_export(source, tmp_path / "history.jsonl"))

    message = _refused(target, _write(tmp_path / "bad.jsonl", [lines[0], lines[-1]]))

    assert message == (f"line 2: crm.Ticket.SatisfactionRated of {lines[-1]['subject']} has version 3, "
                       "but it has no events yet: expected version 1")


def test_the_schema_converts_with_the_event_classes_type_hints() -> None:
    schema = event_lines.SCHEMAS["crm.Deal.Opened"]

    assert set(schema.fields) == {f.name for f in dataclasses.fields(schema.cls)} - {
        "originator_id", "originator_version", "timestamp", "originator_topic"}
    assert schema.fields["expected_close"]("2026-06-30") == date(2026, 6, 30)
    assert schema.fields["expected_close"](None) is None
    with pytest.raises(ValueError, match="True is not of type int"):
        event_lines.SCHEMAS["crm.Ticket.SatisfactionRated"].fields["score"](True)


# --- the commands ------------------------------------------------------------------------------------

cli = typer.Typer()
cli.command("export")(export_history)
cli.command("import")(import_history)


@pytest.fixture
def log_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cli.db"
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("COLUMNS", "200")
    return path


def test_crm_import_then_crm_export_round_trip_the_file(source, log_url, tmp_path) -> None:
    file = _export(source, tmp_path / "history.jsonl")

    imported = runner.invoke(cli, ["import", str(file), "--batch", "3"])
    exported = runner.invoke(cli, ["export", str(tmp_path / "again.jsonl")])

    assert imported.exit_code == 0, imported.output
    assert "Imported 19 events" in imported.output and "Exported 19 events" in exported.output
    assert (tmp_path / "again.jsonl").read_bytes() == file.read_bytes()


def test_crm_import_of_a_bad_file_exits_non_zero_naming_the_line(source, log_url, tmp_path) -> None:
    lines = _lines(_export(source, tmp_path / "history.jsonl"))
    lines[2]["version"] = 0

    result = runner.invoke(cli, ["import", str(_write(tmp_path / "bad.jsonl", lines))])

    assert result.exit_code == 1
    assert "line 3: version 0 is not a positive integer; nothing was imported" in result.output
    assert _app(log_url).event_count() == 0


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 1 << 20])
def test_one_pass_blocks_give_the_lines_and_numbers_a_line_at_a_time_reading_gives(block_bytes, monkeypatch) -> None:
    """The PostgreSQL import hands workers blocks of whole lines (`importer.blocks`), split there: the same
    non-blank lines (less their newline) under the same numbers as `numbered_lines`, whatever the block size —
    blank and whitespace lines, CRLF, a line longer than a block, no newline at the end."""
    import io

    text = (b'{"a": 1}\n\n  \t\n{"b": "\xe4\xb8\xad\xe6\x96\x87"}\r\n\r\n' + b'{"c": "' + b"x" * 100 + b'"}\n'
            + b"\n" * 3 + b'{"d": 4}\n   \n{"e": 5}')
    monkeypatch.setattr(importer, "BLOCK_BYTES", block_bytes)
    got, before = [], 0
    for chunk in importer.blocks(io.BytesIO(text), batch=10):
        total, blank, lines = importer.lines_of_block(lambda lines: lines, chunk.lines)
        got += zip(importer._numbers(before, total, blank), lines)
        before += total
    expected = [(number, line.removesuffix(b"\n")) for number, line in event_lines.numbered_lines(io.BytesIO(text))]
    assert got == expected
