"""`crm import`'s checks of a campaign's variants: a file may hold only what the commands could have recorded —
variants with unique keys and weights > 0, a redefinition keeping every key, exposures, stops and winners of
defined, running variants, and responses and leads naming a variant their campaign defined by then."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from services.application import CrmApplication
from services.commands import CaptureLead, LaunchCampaign, PlanCampaign, RecordResponse, RegisterCustomer
from services.commands.ab_tests import DeclareWinner, DefineVariants, RecordExposures, StopVariant
from services.history import exporter, importer
from services.settings import database_from_url
from tests.conftest import at

AB = [{"key": "A", "name": "原文案", "weight": 1}, {"key": "B", "name": "新文案", "copy": "买一送一", "weight": 1}]


def _app(path: Path) -> CrmApplication:
    return CrmApplication(database_from_url(f"sqlite:///{path}"))


@pytest.fixture
def source(tmp_path: Path) -> CrmApplication:
    crm = _app(tmp_path / "source.db")
    campaign = crm.plan_campaign(PlanCampaign("春季推广", "event", "1000"), at(0))
    crm.define_variants(DefineVariants(campaign, AB, "首轮"), at(0.1))
    crm.launch_campaign(LaunchCampaign(campaign), at(0.2))
    crm.record_exposures(RecordExposures(campaign, "A", 100), at(0.3))
    crm.record_exposures(RecordExposures(campaign, "B", 90), at(0.3))
    lead = crm.capture_lead(CaptureLead("王芳", campaign_id=campaign, variant="B"), at(1))
    crm.record_response(RecordResponse(campaign, "click", lead_id=lead, variant="B"), at(1.1))
    customer = crm.register_customer(RegisterCustomer("陈静"), at(1.2))
    crm.record_response(RecordResponse(campaign, "click", customer, variant="A"), at(1.3))
    crm.stop_variant(StopVariant(campaign, "A", "效果差"), at(2))
    crm.declare_winner(DeclareWinner(campaign, "B", "点击率更高"), at(3))
    return crm


def _lines(source: CrmApplication, tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "h.jsonl"
    with path.open("wb") as out:
        exporter.export_history(source, out)
    return [orjson.loads(raw) for raw in path.read_bytes().splitlines()]


def _import(lines: list[dict[str, Any]], tmp_path: Path) -> CrmApplication:
    path = tmp_path / "edited.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    target = _app(tmp_path / "target.db")
    importer.import_history(target, path, batch=3)
    return target


def _edit(lines: list[dict[str, Any]], type_: str, data: dict[str, Any]) -> None:
    """Change the first line of `type_`."""
    next(line for line in lines if line["type"] == f"crm.{type_}")["data"].update(data)


def test_the_export_of_every_variant_event_imports_whole(source: CrmApplication, tmp_path: Path) -> None:
    lines = _lines(source, tmp_path)
    assert {"crm.Campaign.VariantsDefined", "crm.Campaign.ExposuresRecorded", "crm.Campaign.VariantStopped",
            "crm.Campaign.WinnerDeclared"} <= {line["type"] for line in lines}
    assert _import(lines, tmp_path).event_count() == source.event_count()


def test_lines_written_before_variants_lack_the_field_and_mean_none(source: CrmApplication, tmp_path: Path) -> None:
    lines = [line for line in _lines(source, tmp_path) if line["data"].get("variant", "") == ""
             or not line["type"].endswith(("RespondedToCampaign", "Lead.Captured"))]
    for line in lines:
        if line["type"].endswith(("RespondedToCampaign", "Lead.Captured")):
            del line["data"]["variant"]
    assert _import(lines, tmp_path).event_count() == len(lines)


@pytest.mark.parametrize(("type_", "data", "reason"), [
    ("Campaign.VariantsDefined", {"variants": [{**AB[0], "copy": "", "channel": "", "landing_page": "", "offer": ""},
                                               {**AB[0], "copy": "", "channel": "", "landing_page": "", "offer": ""}]},
     "given twice"),
    ("Campaign.VariantsDefined", {"variants": [{"key": "A", "name": "A", "copy": "", "channel": "", "landing_page": "",
                                                "offer": "", "weight": 0}] * 2}, "greater than zero"),
    ("Campaign.VariantsDefined", {"variants": [{"key": "A", "weight": 1}, {"key": "B", "weight": 1}]},
     "stored as the command stores them"),
    ("Campaign.ExposuresRecorded", {"variant": "Z"}, "defines no variant 'Z'"),
    ("Campaign.ExposuresRecorded", {"count": 0}, "greater than zero"),
    ("Campaign.ExposuresRecorded", {"count": 2**63}, "at most 1,000,000,000 per record"),
    ("Campaign.VariantsDefined", {"variants": [{"key": k, "name": k, "copy": "", "channel": "", "landing_page": "",
                                                "offer": "", "weight": 10**7} for k in "AB"]}, "at most 1,000,000 parts"),
    ("Campaign.VariantsDefined", {"variants": [{"key": k, "name": k, "copy": "", "channel": "", "landing_page": "",
                                                "offer": "", "weight": 1} for k in ("A\x1fB", "C")]},
     "control character"),
    ("Campaign.WinnerDeclared", {"variant": "A"}, "was stopped"),
    ("Campaign.VariantStopped", {"reason": ""}, "reason must not be empty"),
    ("Lead.Captured", {"variant": "C"}, "defines no variant 'C'"),
    ("Lead.RespondedToCampaign", {"variant": "C"}, "field 'variant'.*defines no variant 'C'"),
    ("Customer.RespondedToCampaign", {"variant": "C"}, "defines no variant 'C'"),
    ("Customer.RespondedToCampaign", {"variant": " A"}, "must not start or end with spaces"),
])
def test_a_line_the_commands_could_not_have_written_is_refused_and_nothing_written(
        source: CrmApplication, tmp_path: Path, type_: str, data: dict[str, Any], reason: str) -> None:
    lines = _lines(source, tmp_path)
    _edit(lines, type_, data)
    with pytest.raises(importer.ImportRefused, match=reason):
        _import(lines, tmp_path)
    assert _app(tmp_path / "target.db").event_count() == 0


def test_a_redefinition_dropping_a_key_is_refused(source: CrmApplication, tmp_path: Path) -> None:
    lines = _lines(source, tmp_path)
    (at_,) = [i for i, line in enumerate(lines) if line["type"] == "crm.Campaign.VariantsDefined"]
    again = orjson.loads(orjson.dumps(lines[at_]))  # B and a new C: A, defined before, is dropped
    again["data"]["variants"] = [again["data"]["variants"][1], {**again["data"]["variants"][1], "key": "C", "name": "C"}]
    for line in lines[at_ + 1:]:
        if line["subject"] == again["subject"]:
            line["version"] += 1
    again["version"] += 1
    lines.insert(at_ + 1, again)
    with pytest.raises(importer.ImportRefused, match=r"field 'variants'.*variant\(s\) A are already defined"):
        _import(lines, tmp_path)
