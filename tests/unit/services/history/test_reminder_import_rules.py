"""`crm import`'s checks of reminders (review 15, P1-1 and P1-2): a `Reminder.Emitted` must have the id derived
from its (item, stage entry, threshold) — else the process's later save of the reminder whose id it took would
conflict, be counted as sent, and never be sent — and a `Pipeline.StageRemindersSet` must name the pipeline it
is stored under (the read model reads the field, the domain the subject)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.reminder_rules import reminder_id
from services.application import CrmApplication
from services.commands import DefinePipeline, OpenDeal, RegisterCustomer, SetStageReminders, Stage
from services.history import importer
from services.reminder_process import ReminderProcess
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0, at
from tests.support.edited_history import import_edited, sqlite_app as _app


def _refused_when_edited(source: CrmApplication, tmp_path: Path, edit: Callable[[dict[str, Any]], None],
                         reason: str) -> None:
    """Export `source`, `edit` each line, import the file into a new log: refused for `reason`, nothing written."""
    with pytest.raises(importer.ImportRefused, match=reason):
        import_edited(source, tmp_path, edit)
    assert _app(tmp_path / "target.db").event_count() == 0


def test_an_imported_reminder_under_another_reminders_id_is_refused(tmp_path: Path) -> None:
    source = _app(tmp_path / "source.db")
    source.ensure_default_pipelines(at(-30, "setup"))
    source.set_stage_reminders(SetStageReminders("sales", "lead", [3, 7]), at(-29, "admin"))
    customer = source.register_customer(RegisterCustomer("张三", "华东", "零售", "web", company="杭州云启"), at(0))
    deal = source.open_deal(OpenDeal(customer, "云服务采购", "1000", owner="李娜"), at(1))
    ReminderProcess(source, ReadModelStore(source.database), lambda: T0 + timedelta(days=5)).run_step()  # 3d

    def take_the_7d_id(line: dict[str, Any]) -> None:  # the 3d reminder's data under the 7d one's id
        if line["type"].endswith("Reminder.Emitted"):
            line["subject"] = str(reminder_id(deal, 1, "7d", customer))
    _refused_when_edited(source, tmp_path, take_the_7d_id, "derived from them")


def test_imported_stage_reminders_naming_another_pipeline_are_refused(tmp_path: Path) -> None:
    source = _app(tmp_path / "source.db")
    source.ensure_default_pipelines(at(-30, "setup"))
    source.define_pipeline(DefinePipeline("sales2", "二号漏斗", [Stage("lead", "线索"), Stage("won2", "赢")]),
                           at(-29, "admin"))
    source.set_stage_reminders(SetStageReminders("sales2", "lead", [3]), at(-28, "admin"))

    def name_sales(line: dict[str, Any]) -> None:  # its subject stays sales2's
        if line["type"].endswith("StageRemindersSet"):
            line["data"]["pipeline"] = "sales"
    _refused_when_edited(source, tmp_path, name_sales, "pipeline 'sales2'.s, not 'sales'.s")
