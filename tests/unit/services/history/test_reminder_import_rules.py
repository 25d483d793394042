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


def test_an_sla_reminder_under_its_stage_entrys_id_from_an_older_log_is_imported(tmp_path: Path) -> None:
    """SLA reminders are one per (ticket, clock, threshold) now; a log written before holds them under the id of
    the stage entry they were noticed in, and its export must still import."""
    from domain.base import Meta
    from domain.reminder_rules import Reminder, StageEntry, entry_reminder_id, thresholds
    from services.commands import OpenTicket
    from services.history import exporter  # local: the module's own imports are another part's to keep

    source = _app(tmp_path / "source.db")
    source.ensure_default_pipelines(at(-30, "setup"))
    customer = source.register_customer(RegisterCustomer("张三", "华东", "零售", "web", company="杭州云启"), at(0))
    ticket = source.open_ticket(OpenTicket(customer, "无法登录", "phone", priority="urgent"), at(1))
    entry = StageEntry(ticket, "ticket", "service", "in_progress", 3, at(1).occurred_at, at(1).occurred_at, True,
                       "urgent")
    threshold = next(t for t in thresholds(entry, []) if t.label == "sla:resolution:0.75")
    legacy = Reminder._open(Reminder.Emitted, Meta(occurred_at=threshold.due_at, actor="crm reminders"),
                            id=entry_reminder_id(ticket, 3, threshold.label, customer), item_id=ticket,
                            item_kind="ticket", pipeline="service", stage="in_progress", entry_version=3,
                            entered_at=entry.entered_at, threshold=threshold.label, due_at=threshold.due_at,
                            owner="", customer_id=customer)
    source.save_new(legacy)
    path = tmp_path / "h.jsonl"
    with path.open("wb") as out:
        exporter.export_history(source, out)
    target = _app(tmp_path / "target.db")
    importer.import_history(target, path, batch=4)
    assert target.event_count() == source.event_count()
