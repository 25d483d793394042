"""`crm import`'s checks of segment changes: a `SegmentChange.Recorded` must have the id derived from its
(customer, sequence, old tier, new tier) — or, recorded before sequences (LEGACY), from (customer, changed_at, old
tier, new tier) — else the process's later record of the change whose id it took would
conflict, be counted as announced, and never be announced — and name known tiers; a faithful export imports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.segment_change_rules import LEGACY, SegmentChange, change_id, legacy_change_id
from services.application import CrmApplication
from services.commands import RegisterCustomer
from services.history import importer
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
            change.sequence) == (change_id(customer, 0, "", "ordinary"), customer, "", "ordinary", T0, 0)


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
    (lambda line: line["data"].update(new_tier="potential"), "derived from them"),  # another change's data …
    (lambda line: line.update(subject=str(change_id(UUID(line["data"]["customer_id"]), 0, "", "potential"))),
     "derived from them"),  # … or another's id
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
