"""`crm import`'s checks of segment changes: a `SegmentChange.Recorded` must have the id derived from its
(customer, sequence) — or, recorded before sequences (LEGACY), from (customer, changed_at, old tier, new tier) —
else the process's later record of the link whose id it took would conflict, be counted as announced, and never
be announced; name known tiers; be its living customer's next link; a faithful export imports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest

from domain.segment_change_rules import LEGACY, SegmentChange, change_id, legacy_change_id
from services.application import CrmApplication
from services.commands import ForgetCustomer, RegisterCustomer
from services.history import exporter, importer
from services.segment_process import SegmentChangeProcess
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0, at
from tests.support.edited_history import import_edited, sqlite_app as _app


def _source(tmp_path: Path) -> tuple[CrmApplication, Any]:
    source = _app(tmp_path / "source.db")
    source.ensure_default_pipelines(at(-30, "setup"))
    customer = source.register_customer(RegisterCustomer("张三", "华东", "零售", "web", company="杭州云启"), at(0))
    SegmentChangeProcess(source, ReadModelStore(source.database), lambda: T0 + timedelta(days=1)).run_step()
    return source, customer


def test_an_exported_segment_change_imports_as_it_was(tmp_path: Path) -> None:
    source, customer = _source(tmp_path)
    target = import_edited(source, tmp_path, lambda line: None)
    (change,) = [e for _, e in target.read_log() if isinstance(e, SegmentChange.Recorded)]
    assert (change.originator_id, change.customer_id, change.old_tier, change.new_tier, change.changed_at,
            change.sequence) == (change_id(customer, 0), customer, "", "ordinary", T0, 0)


def _legacy(line: dict[str, Any]) -> None:
    """The line as a change recorded before sequences: LEGACY, its id from its instant."""
    data = line["data"]
    data["sequence"] = LEGACY
    line["subject"] = str(legacy_change_id(UUID(data["customer_id"]), T0, data["old_tier"], data["new_tier"]))


def test_a_change_recorded_before_sequences_imports_with_its_legacy_id(tmp_path: Path) -> None:
    source, customer = _source(tmp_path)
    target = import_edited(source, tmp_path, _change_line(_legacy))
    (change,) = [e for _, e in target.read_log() if isinstance(e, SegmentChange.Recorded)]
    assert (change.originator_id, change.sequence) == (legacy_change_id(customer, T0, "", "ordinary"), LEGACY)


def _change_line(edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def edited(line: dict[str, Any]) -> None:
        if line["type"].endswith("SegmentChange.Recorded"):
            edit(line)
    return edited


@pytest.mark.parametrize("edit, reason", [
    (lambda line: line.update(subject=str(change_id(UUID(line["data"]["customer_id"]), 1))),
     "derived from them"),  # another link's id
    (lambda line: line["data"].update(sequence=1), "derived from them"),  # another link of the chain
    (lambda line: line["data"].update(sequence=-2), "sequence counts"),
    (lambda line: line["data"].update(sequence=LEGACY), "derived from them"),  # a legacy sequence, a new id
    (lambda line: line["data"].update(new_tier="vip"), "unknown value tier"),
    (lambda line: line["data"].update(old_tier="ordinary"), "two tiers"),
])
def test_an_imported_segment_change_under_another_changes_id_or_with_unknown_tiers_is_refused(
        tmp_path: Path, edit: Callable[[dict[str, Any]], None], reason: str) -> None:
    source, _ = _source(tmp_path)
    with pytest.raises(importer.ImportRefused, match=reason):
        import_edited(source, tmp_path, _change_line(edit))
    assert _app(tmp_path / "target.db").event_count() == 0


# -- a change must be its customer's next link, of a customer that exists and is not forgotten


def _left_after_forgetting(tmp_path: Path) -> tuple[CrmApplication, UUID]:
    """A customer announced (number 0: '' → ordinary), forgotten, then announced leaving (number 1: → '')."""
    source, customer = _source(tmp_path)
    source.forget_customer(ForgetCustomer(customer), at(1.5))
    SegmentChangeProcess(source, ReadModelStore(source.database), lambda: T0 + timedelta(days=2)).run_step()
    assert [e.sequence for _, e in source.read_log() if isinstance(e, SegmentChange.Recorded)] == [0, 1]
    return source, customer


def _rederived(**data: Any) -> Callable[[dict[str, Any]], None]:
    """Edit a change line's data and give it the id derived from the edited data (so only the new rules object)."""
    def edit(line: dict[str, Any]) -> None:
        line["data"].update(data)
        d = line["data"]
        line["subject"] = str(change_id(UUID(d["customer_id"]), d["sequence"]))
    return edit


def _number(sequence: int, edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return _change_line(lambda line: edit(line) if line["data"]["sequence"] == sequence else None)


def test_a_chain_with_a_leaving_after_forgetting_imports_as_it_was(tmp_path: Path) -> None:
    source, _ = _left_after_forgetting(tmp_path)
    target = import_edited(source, tmp_path, lambda line: None)
    assert [(e.sequence, e.old_tier, e.new_tier) for _, e in target.read_log()
            if isinstance(e, SegmentChange.Recorded)] == [(0, "", "ordinary"), (1, "ordinary", "")]


@pytest.mark.parametrize("edit, reason", [
    (_number(1, _rederived(sequence=2)), "no segment change announcement number 1"),  # a link skipped
    (_number(1, _rederived(old_tier="potential")), "number 0 went into 'ordinary'"),  # not from the last tier
    (_number(0, _rederived(old_tier="potential", new_tier="ordinary")), "comes from no tier"),
    (_number(1, _rederived(sequence=0, old_tier="", new_tier="potential", changed_at="2026-03-01T09:00:00Z")),
     "has version 1, but version 1 is the last"),  # a second number 0 (its id: the first's), before the forgetting
    (_number(0, _rederived(customer_id="5e0c3f1a-0000-4000-8000-000000000001")), "no customer"),  # a phantom
    (_number(0, lambda line: line["data"].update(changed_at="2026-03-03T09:00:00Z")), "recorded after it happened"),
])
def test_a_change_that_is_not_its_living_customers_next_link_is_refused(
        tmp_path: Path, edit: Callable[[dict[str, Any]], None], reason: str) -> None:
    source, _ = _left_after_forgetting(tmp_path)
    with pytest.raises(importer.ImportRefused, match=reason):
        import_edited(source, tmp_path, edit)
    assert _app(tmp_path / "target.db").event_count() == 0


def _import_lines(target: CrmApplication, tmp_path: Path, lines: list[bytes]) -> None:
    path = tmp_path / "more.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    importer.import_history(target, path, batch=4)


def test_the_previous_link_and_a_rival_are_found_in_the_log(tmp_path: Path) -> None:
    """A file continuing a chain whose earlier links the log holds: the next link imports; another number 0 is
    refused by the log's own number 0 (its id derives from the customer and the number alone)."""
    source, _ = _source(tmp_path)
    export = tmp_path / "all.jsonl"
    with export.open("wb") as out:
        exporter.export_history(source, out)
    lines = export.read_bytes().splitlines()
    target = _app(tmp_path / "target.db")
    _import_lines(target, tmp_path, lines)
    number_0 = orjson.loads(lines[-1])
    assert number_0["data"]["sequence"] == 0

    rival = orjson.loads(lines[-1])
    _rederived(new_tier="potential")(rival)
    with pytest.raises(importer.ImportRefused, match="already exists|has version 1"):
        _import_lines(target, tmp_path, [orjson.dumps(rival)])

    number_1 = orjson.loads(lines[-1])
    _rederived(sequence=1, old_tier="ordinary", new_tier="potential")(number_1)
    _import_lines(target, tmp_path, [orjson.dumps(number_1)])
    assert [e.sequence for _, e in target.read_log() if isinstance(e, SegmentChange.Recorded)] == [0, 1]

    skipping = orjson.loads(lines[-1])
    _rederived(sequence=3, old_tier="potential", new_tier="high_value")(skipping)
    with pytest.raises(importer.ImportRefused, match="no segment change announcement number 2"):
        _import_lines(target, tmp_path, [orjson.dumps(skipping)])
