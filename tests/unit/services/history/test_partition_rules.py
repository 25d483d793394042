"""`crm import` of a JSON-lines history and home partitions: responses on a respondent's stream need a launched
campaign; old exports keep importing — `Campaign.ResponseRecorded` lines, and deals whose ids predate the rule
(random, or their source id's bare UUID) — while an external id's deal at any other id is refused."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from uuid import UUID, uuid4

import orjson
import pytest

from domain.deal import Deal
from domain.external_ids import external_uuid, imported_id
from domain.partitions import in_partition, partition_of
from services.application import CrmApplication
from services.commands import RecordResponse
from services.history import exporter, importer
from tests.conftest import at
from tests.unit.services.history.test_rules import Lines, _app, _following, _index, _refused, _write, record_sale


def _history(tmp_path: Path, respond: bool = True) -> Lines:
    source = _app(tmp_path / "source.db")
    record_sale(source)
    if respond:
        campaign = next(e.originator_id for _, e in source.read_log() if type(e).__qualname__ == "Campaign.Planned")
        customer = next(e.originator_id for _, e in source.read_log() if type(e).__qualname__ == "Customer.Registered")
        source.record_response(RecordResponse(campaign, "reply", customer), at(8))
    with (tmp_path / "history.jsonl").open("wb") as out:
        exporter.export_history(source, out)
    source.close()
    return [orjson.loads(line) for line in (tmp_path / "history.jsonl").read_bytes().splitlines()]


def _imports(tmp_path: Path, lines: Lines) -> CrmApplication:
    target = _app(tmp_path / "target.db")
    importer.import_history(target, _write(tmp_path / "in.jsonl", lines), batch=3)
    return target


def test_a_response_on_the_respondents_stream_imports_and_one_before_the_launch_is_refused(tmp_path: Path) -> None:
    lines = _history(tmp_path)
    with closing(_imports(tmp_path, lines)) as target:
        assert target.event_count() == len(lines)
    launched = lines.pop(_index(lines, "crm.Campaign.Launched"))
    lines.insert(_index(lines, "crm.Customer.RespondedToCampaign") + 1, launched)
    refused = _refused(_app(tmp_path / "other.db"), _write(tmp_path / "early.jsonl", lines))
    assert "field 'campaign_id': responses are recorded only once a campaign is launched; this one is planned" \
        in refused


def test_an_old_exports_campaign_response_lines_still_import(tmp_path: Path) -> None:
    lines = _history(tmp_path, respond=False)
    campaign = _index(lines, "crm.Campaign.Launched")
    customer = lines[_index(lines, "crm.Customer.Registered")]["subject"]
    old = _following(lines, campaign, "crm.Campaign.ResponseRecorded", kind="reply", customer_id=customer,
                     lead_id=None)
    old["data"]["occurred_at"] = "2026-03-02T09:00:00Z"
    lines.insert(campaign + 1, old)
    with closing(_imports(tmp_path, lines)) as target:
        assert target.event_count() == len(lines)


def _deal_at(lines: Lines, new_id: UUID, external_id: str = "") -> Lines:
    """The history with its deal under `new_id` (and `external_id` on its Opened line)."""
    deal = lines[_index(lines, "crm.Deal.Opened")]["subject"]
    for line in lines:
        if line["subject"] == deal:
            line["subject"] = str(new_id)
        if line["type"] == "crm.Deal.Opened":
            line["data"]["external_id"] = external_id
        if line["type"] == "crm.Lead.Converted":
            line["data"]["deal_id"] = str(new_id)
    return lines


def test_deals_whose_ids_predate_home_partitions_still_import(tmp_path: Path) -> None:
    lines = _history(tmp_path, respond=False)
    customer = UUID(lines[_index(lines, "crm.Customer.Registered")]["subject"])
    elsewhere = in_partition((partition_of(customer) + 1) % 64, uuid4())
    with closing(_imports(tmp_path, _deal_at(lines, elsewhere))) as target:
        assert target.get(Deal, elsewhere).customer_id == customer  # a legacy record, outside its customer's partition
    again = tmp_path / "again"
    again.mkdir()
    legacy = external_uuid("deal", "salesforce", "006A")  # the id an import gave before home partitions
    with closing(_imports(again, _deal_at(_history(again, respond=False), legacy, "salesforce:006A"))) as target:
        assert target.get(Deal, legacy).external_id == "salesforce:006A"


def test_an_imported_deal_at_neither_its_placed_nor_its_old_id_is_refused(tmp_path: Path) -> None:
    lines = _history(tmp_path, respond=False)
    wrong = in_partition(0, uuid4())
    refused = _refused(_app(tmp_path / "other.db"), _write(tmp_path / "bad.jsonl",
                                                          _deal_at(lines, wrong, "salesforce:006A")))
    assert f"field 'external_id': id {wrong} is not the id of deal salesforce:006A" in refused


def test_two_deals_with_one_external_id_are_refused_in_the_file_and_against_the_log(tmp_path: Path) -> None:
    """Placed in different customers' partitions they no longer share an id; the external id still names one."""
    lines = _history(tmp_path, respond=False)
    customer = UUID(lines[_index(lines, "crm.Customer.Registered")]["subject"])
    opened = lines[_index(lines, "crm.Deal.Opened")]
    opened["data"]["external_id"] = "salesforce:006A"
    placed = imported_id("deal", "salesforce:006A", partition_of(customer))
    lines = _deal_at(lines, placed, "salesforce:006A")
    other = in_partition((partition_of(customer) + 1) % 64, placed)  # the same key, another customer's partition
    twin = {**opened, "subject": str(other), "version": 1,
            "data": {**opened["data"], "customer_id": str(in_partition(partition_of(other), uuid4())),
                     "external_id": "salesforce:006A"}}
    refused = _refused(_app(tmp_path / "twice.db"), _write(tmp_path / "twice.jsonl", [*lines, twin]))
    assert f"field 'external_id': a deal with external id salesforce:006A already exists (id {placed}" in refused
    with closing(_imports(tmp_path, lines)) as target:  # the first alone imports; the twin then meets it in the log
        with pytest.raises(importer.ImportRefused, match=f"already exists \\(id {placed}"):
            importer.import_history(target, _write(tmp_path / "twin.jsonl", [twin]), batch=3)
