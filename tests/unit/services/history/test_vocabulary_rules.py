"""`crm import` checks channels, regions, industries and loss reasons against the vocabulary in force at their
line: a value the installation added earlier in the file (or in the log) is accepted, one outside it refused,
and `unknown` always stands for what the source lacks (services/history/rules/vocabulary_lifecycle.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.exchange_rates import rate_id
from domain.external_ids import external_uuid
from domain.vocabulary import vocabulary_id
from services.application import CrmApplication
from services.commands import AddVocabularyValue, CaptureLead, LogTouch, RegisterCustomer
from services.history import importer
from services.history.event_lines import SCHEMAS
from tests.conftest import at
from tests.unit.services.history.test_rules import Lines, _refused, _write

ACTOR = {"actor": "导入", "correlation_id": "c0ffee"}


def _vocabulary_line(of: str, version: int, event: str, day: int, **data: Any) -> dict[str, Any]:
    return {"type": f"crm.Vocabulary.{event}", "subject": str(vocabulary_id(of)), "version": version,
            "data": {"occurred_at": f"2026-02-{day:02d}T09:00:00Z", **ACTOR, **data}}


def _lead_line(channel: str, **data: Any) -> dict[str, Any]:
    return {"type": "crm.Lead.Captured", "subject": str(uuid4()), "version": 1,
            "data": {"occurred_at": "2026-03-01T09:00:00Z", **ACTOR, "name": "", "company": "某公司",
                     "region": "unknown", "industry": "unknown", "channel": channel, "contact": "",
                     "campaign_id": None, "external_id": "", **data}}


def _lead(channel: str, **data: Any) -> dict[str, Any]:
    """A Lead.Captured line with the fields that event has in this tree (a sibling part may add external_id)."""
    line = _lead_line(channel, **data)
    line["data"] = {k: v for k, v in line["data"].items() if k in SCHEMAS["crm.Lead.Captured"].fields}
    return line


def test_a_channel_outside_the_vocabulary_is_refused(target, tmp_path) -> None:
    message = _refused(target, _write(tmp_path / "h.jsonl", [_lead("paid_search")]))

    assert message.startswith("line 1: crm.Lead.Captured of "), message
    assert "field 'channel': unknown acquisition channel 'paid_search'; expected one of: email" in message


def test_a_channel_added_earlier_in_the_file_is_accepted(target, tmp_path) -> None:
    lines = [_vocabulary_line("acquisition_channel", 1, "Defined", 1, kind="acquisition_channel",
                              values=["email", "web"], open=False),
             _vocabulary_line("acquisition_channel", 2, "ValueAdded", 2, value="paid_search"),
             _lead("paid_search")]

    importer.import_history(target, _write(tmp_path / "h.jsonl", lines))

    assert target.vocabularies(fresh=True)["acquisition_channel"].values == ("email", "web", "paid_search")


def test_a_value_retired_before_its_line_is_refused_and_one_defined_after_it_too(target, tmp_path) -> None:
    defined = _vocabulary_line("acquisition_channel", 1, "Defined", 1, kind="acquisition_channel",
                               values=["email", "web"], open=False)
    retired = _vocabulary_line("acquisition_channel", 2, "ValueRetired", 2, value="web")

    message = _refused(target, _write(tmp_path / "h.jsonl", [defined, retired, _lead("web")]))
    assert message.startswith("line 3: ") and "unknown acquisition channel 'web'" in message

    message = _refused(target, _write(tmp_path / "h.jsonl", [_lead("微信"), defined,
                                                             _vocabulary_line("acquisition_channel", 2, "ValueAdded",
                                                                              2, value="微信")]))
    assert message.startswith("line 1: ") and "unknown acquisition channel '微信'" in message


def test_a_value_accepted_on_one_line_and_retired_after_it_is_refused_on_the_next(target, tmp_path) -> None:
    """The in-order check remembers values the terms in force accepted: a vocabulary line must forget them."""
    defined = _vocabulary_line("acquisition_channel", 1, "Defined", 1, kind="acquisition_channel",
                               values=["email", "web"], open=False)
    retired = _vocabulary_line("acquisition_channel", 2, "ValueRetired", 2, value="web")

    message = _refused(target, _write(tmp_path / "h.jsonl", [defined, _lead("web"), retired, _lead("web")]))

    assert message.startswith("line 4: ") and "unknown acquisition channel 'web'" in message, message


def test_unknown_is_accepted_and_a_blank_value_is_refused(target, tmp_path) -> None:
    importer.import_history(target, _write(tmp_path / "ok.jsonl", [_lead("unknown")]))

    message = _refused_more(target, tmp_path, [_lead("unknown", region=" ")])
    assert "field 'region': region must not be empty; write 'unknown' when it is not known" in message


def _refused_more(target: CrmApplication, tmp_path: Path, lines: Lines) -> str:
    before = target.event_count()
    with pytest.raises(importer.ImportRefused) as refused:
        importer.import_history(target, _write(tmp_path / "bad.jsonl", lines))
    assert target.event_count() == before
    return str(refused.value)


def test_a_vocabulary_in_the_log_rules_the_file(target, tmp_path) -> None:
    target.add_vocabulary_value(AddVocabularyValue("acquisition_channel", "直播"), at(-40))

    importer.import_history(target, _write(tmp_path / "h.jsonl", [_lead("直播")]))


def test_a_vocabulary_whose_id_is_not_its_kinds_is_refused(target, tmp_path) -> None:
    line = _vocabulary_line("industry", 1, "Defined", 1, kind="region", values=[], open=True)

    message = _refused(target, _write(tmp_path / "h.jsonl", [line]))

    assert f"field 'kind': vocabulary 'region' has the id {vocabulary_id('region')}, derived from its kind" in message


@pytest.mark.parametrize(("event", "data", "reason"), [
    ("ValueAdded", {"value": "email"}, "already has 'email'"),
    ("ValueRetired", {"value": "fax"}, "has no value 'fax' in force"),
    ("ValueAdded", {"value": "unknown"}, "'unknown' is always accepted"),
    ("Replaced", {"values": ["web", "web"], "open": False}, "must be unique"),
])
def test_what_the_vocabulary_commands_refuse_is_refused(target, tmp_path, event, data, reason) -> None:
    lines = [_vocabulary_line("touch_channel", 1, "Defined", 1, kind="touch_channel", values=["email"], open=False),
             _vocabulary_line("touch_channel", 2, event, 2, **data)]

    message = _refused(target, _write(tmp_path / "h.jsonl", lines))

    assert message.startswith("line 2: ") and reason in message


def test_a_history_with_unknowns_and_vocabularies_round_trips(target, tmp_path) -> None:
    """What the commands record (unknowns, a nameless lead, a value added) exports and imports."""
    from services.history import exporter
    from tests.unit.services.history.test_rules import _app
    source = _app(tmp_path / "source.db")
    source.ensure_default_pipelines(at(-30, "setup"))
    source.add_vocabulary_value(AddVocabularyValue("touch_channel", "微信"), at(-20))
    customer = source.register_customer(RegisterCustomer("张三"), at(0))
    source.log_touch(LogTouch(customer, "微信", "inbound", ""), at(1))
    source.capture_lead(CaptureLead(), at(2))
    with (tmp_path / "h.jsonl").open("wb") as out:
        exporter.export_history(source, out)
    source.close()

    importer.import_history(target, tmp_path / "h.jsonl")

    assert "微信" in target.vocabularies(fresh=True)["touch_channel"].values
    assert target.event_count() == 3 + 2 + 2 + 1  # pipelines, vocabulary (defaults, added), customer and touch, lead


def test_a_line_may_leave_out_what_real_data_lacks_and_unknown_is_stored(target, tmp_path) -> None:
    line = _lead("unknown")
    for name in ("name", "region", "industry", "channel"):
        del line["data"][name]

    importer.import_history(target, _write(tmp_path / "h.jsonl", [line]))

    captured = target.history(UUID(line["subject"]))[0]
    assert (captured.name, captured.region, captured.industry, captured.channel) == ("", "unknown", "unknown",
                                                                                     "unknown")


def test_vocabularies_external_ids_and_rates_import_in_one_file(target, tmp_path) -> None:
    """Issue 12's parts together: a channel added earlier in the file serves an imported lead whose subject
    derives from its external id; a release 1 line (no external_id, and none of what real data lacks) stores
    "" and unknowns; a rate line sits among them."""
    imported = _lead("展会", external_id="hubspot:42", name="赵敏")
    imported["subject"] = str(external_uuid("lead", "hubspot", "42"))
    old = _lead("unknown")
    for name in ("name", "region", "industry", "channel", "external_id"):
        del old["data"][name]
    rate = {"type": "crm.ExchangeRate.Quoted", "subject": str(rate_id("USD", "CNY", date(2026, 2, 3))), "version": 1,
            "data": {"occurred_at": "2026-02-03T00:00:00Z", **ACTOR, "currency": "USD", "quote": "CNY",
                     "rate": "7.1", "valid_from": "2026-02-03", "source": "人民银行中间价"}}
    lines = [_vocabulary_line("acquisition_channel", 1, "Defined", 1, kind="acquisition_channel",
                              values=["web"], open=False),
             _vocabulary_line("acquisition_channel", 2, "ValueAdded", 2, value="展会"), rate, imported, old]

    importer.import_history(target, _write(tmp_path / "h.jsonl", lines))

    lead = target.history(UUID(imported["subject"]))[0]
    assert (lead.channel, lead.external_id) == ("展会", "hubspot:42")
    sparse = target.history(UUID(old["subject"]))[0]
    assert (sparse.name, sparse.channel, sparse.external_id) == ("", "unknown", "")
    assert target.event_count() == 2 + 1 + 2


def test_an_imported_lead_in_a_retired_channel_is_refused_by_its_channel(target, tmp_path) -> None:
    lines = [_vocabulary_line("acquisition_channel", 1, "Defined", 1, kind="acquisition_channel",
                              values=["web", "展会"], open=False),
             _vocabulary_line("acquisition_channel", 2, "ValueRetired", 2, value="展会"),
             {**_lead("展会", external_id="hubspot:42"), "subject": str(external_uuid("lead", "hubspot", "42"))}]

    message = _refused(target, _write(tmp_path / "h.jsonl", lines))
    assert message.startswith("line 3: ") and "unknown acquisition channel '展会'" in message
