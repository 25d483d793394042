"""`crm import`'s raw lines accept exactly what the commands accept and store exactly what they store: a field
a command strips (a dimension, a vocabulary value, a name, a tag, a label, the actor) is refused when a line
holds it with surrounding spaces, rather than stored as a second value beside the stripped one (review12 P1-5)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import DomainError
from services.application import CrmApplication
from services.commands import RegisterCustomer
from services.history import importer
from tests.conftest import at
from tests.unit.services.history.test_rules import (Lines, _app, _assert_refused_by_line_and_field, _index, _set, _write,
                                                    history)  # noqa: F401 (a fixture)
from tests.unit.services.history.test_vocabulary_rules import _lead, _vocabulary_line

REASON = "must not start or end with spaces: a history file is a record of events"


def _stage_label(lines: Lines) -> tuple[Lines, int, str]:
    index = _index(lines, "crm.Pipeline.Defined")
    lines[index]["data"]["stages"][0]["label"] = " 初步接触"
    return lines, index, "stages"


# One field of each kind the commands strip, in the history of a sale (test_rules.history).
KINDS: dict[str, Callable[[Lines], tuple[Lines, int, str]]] = {
    "a dimension (region)": _set("crm.Customer.Registered", "region", "  华东  "),
    "a closed vocabulary's value (acquisition channel)": _set("crm.Lead.Captured", "channel", " event "),
    "a touch channel": _set("crm.Customer.TouchLogged", "channel", "phone "),
    "a customer's name": _set("crm.Customer.Registered", "name", "王芳 "),
    "a lead's name": _set("crm.Lead.Captured", "name", " 王芳"),
    "a company": _set("crm.Lead.Captured", "company", "杭州云启科技有限公司\n"),
    "an owner": _set("crm.Lead.Assigned", "owner", " 李娜"),
    "a deal's title": _set("crm.Deal.Opened", "title", "云服务采购 "),
    "a campaign's name": _set("crm.Campaign.Planned", "name", "\t春季新品发布会"),
    "a stage label": _stage_label,
    "the actor": _set("crm.Deal.Won", "actor", "李娜 "),
}


@pytest.mark.parametrize("kind", KINDS)
def test_a_stripped_field_with_spaces_around_it_is_refused_by_line_and_field(history, target, tmp_path,
                                                                             kind) -> None:
    _assert_refused_by_line_and_field(target, tmp_path, history, KINDS[kind], REASON)


def test_a_tag_with_spaces_around_it_is_refused(history, target, tmp_path) -> None:
    customer = history[_index(history, "crm.Customer.Registered")]
    version = max(line["version"] for line in history if line["subject"] == customer["subject"]) + 1
    tag = {"type": "crm.Customer.TagAdded", "subject": customer["subject"], "version": version,
           "data": {"occurred_at": "2026-03-20T09:00:00Z", "actor": "李娜", "correlation_id": "c0ffee",
                    "tag": " 重点客户 "}}

    with pytest.raises(importer.ImportRefused, match=f"field 'tag': ' 重点客户 ' {REASON}"):
        importer.import_history(target, _write(tmp_path / "h.jsonl", [*history, tag]))
    assert target.event_count() == 0


@pytest.mark.parametrize(("event", "data"), [
    ("Defined", {"kind": "acquisition_channel", "values": ["web", " 展会"], "open": False}),
    ("ValueAdded", {"value": "展会 "}),
])
def test_a_vocabulary_value_with_spaces_around_it_is_refused(target, tmp_path, event, data) -> None:
    lines = [_vocabulary_line("acquisition_channel", 1, "Defined", 1, kind="acquisition_channel",
                              values=["web"], open=False)] if event != "Defined" else []
    lines.append(_vocabulary_line("acquisition_channel", len(lines) + 1, event, 2, **data))

    with pytest.raises(importer.ImportRefused, match=f"line {len(lines)}: .* {REASON}"):
        importer.import_history(target, _write(tmp_path / "h.jsonl", lines))
    assert target.event_count() == 0


def test_the_stripped_value_a_command_stores_is_accepted(target, tmp_path) -> None:
    importer.import_history(target, _write(tmp_path / "h.jsonl", [_lead("web", region="华东", name="王芳")]))


# Text around which a user may type spaces: letters, Chinese, digits, "@" (refused in a dimension), blanks.
_TEXT = st.text(st.sampled_from(list("ab华东 \t9@-")), min_size=0, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(region=_TEXT, name=_TEXT)
def test_a_command_and_a_raw_line_store_the_same_or_the_line_is_refused(tmp_path, region, name) -> None:
    """A customer's region and name through `register_customer` and through a raw Customer.Registered line: the
    line is accepted only when it holds exactly what the command stores; what the command refuses, it refuses."""
    stored = _through_the_command(tmp_path, name, region)
    line = _registered_line(name, region)
    raw = _app(tmp_path / f"raw-{uuid4().hex}.db")
    try:
        importer.import_history(raw, _write(tmp_path / f"{uuid4().hex}.jsonl", [line]))
    except importer.ImportRefused:
        assert stored is None or stored != (name, region)
    else:
        assert stored == (name, region)
        event = raw.history(UUID(line["subject"]))[0]
        assert (event.name, event.region) == stored
    finally:
        raw.close()


def _through_the_command(tmp_path: Path, name: str, region: str) -> tuple[str, str] | None:
    """What the command stores as (name, region), or None when it refuses."""
    crm = _app(tmp_path / f"command-{uuid4().hex}.db")
    try:
        customer = crm.register_customer(RegisterCustomer(name, region=region), at(0))
    except (DomainError, ValueError):  # a command's own type (pydantic) refuses with a ValueError
        return None
    else:
        event = crm.history(customer)[0]
        return event.name, event.region
    finally:
        crm.close()


def _registered_line(name: str, region: str) -> dict[str, Any]:
    return {"type": "crm.Customer.Registered", "subject": str(uuid4()), "version": 1,
            "data": {"occurred_at": "2026-03-01T09:00:00Z", "actor": "导入", "correlation_id": "c0ffee",
                     "name": name, "company": "", "region": region, "industry": "unknown", "channel": "unknown",
                     "email": "", "phone": "", "campaign_id": None, "external_id": ""}}
