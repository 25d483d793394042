"""The due-reminder rule: which thresholds of a stage entry are due at an instant, and the reminder's one id."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from domain.base import Meta
from domain.errors import DomainError
from domain.partitions import in_partition, partition_of
from domain.pipeline import DEFAULT_PIPELINES, Pipeline, check_remind_after_days
from domain.reminder_rules import (Reminder, StageEntry, due, dwell_label, entry_reminder_id, reminder_id,
                                   thresholds)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
DEAL = in_partition(5)


def _entry(kind: str = "deal", stage: str = "proposal", version: int = 3, priority: str = "",
           first_span: bool = True, entered_days: float = 0) -> StageEntry:
    pipeline = {"deal": "sales", "lead": "marketing", "ticket": "service"}[kind]
    return StageEntry(DEAL, kind, pipeline, stage, version, T0 + timedelta(days=entered_days), T0, first_span, priority)


def _days(days: float) -> datetime:
    return T0 + timedelta(days=days)


def test_a_threshold_is_due_once_the_clock_passed_it_while_the_item_stays():
    entry = _entry()
    assert due(entry, [3, 7], _days(2.99)) == []
    assert [t.label for t in due(entry, [3, 7], _days(3))] == ["3d"]  # exactly on it is due
    assert [(t.label, t.due_at) for t in due(entry, [3, 7], _days(10))] == [("3d", _days(3)), ("7d", _days(7))]
    assert [t.label for t in due(entry, [0.5], _days(0.5))] == ["0.5d"]  # fractions of a day: 12 hours


def test_no_reminder_for_a_stay_that_is_over_even_of_a_threshold_passed_before_it_ended():
    entry = _entry()
    assert due(entry, [3, 7], _days(10), left_at=_days(5)) == []  # the process was down from day 3 to day 10
    assert [t.label for t in due(entry, [3, 7], _days(4), left_at=_days(5))] == ["3d"]  # it leaves later


def test_an_entry_in_the_future_is_due_nothing_yet():
    assert due(_entry(entered_days=2), [0.5], _days(1)) == []


def test_a_ticket_is_reminded_before_and_at_its_service_level_breach():
    urgent = _entry("ticket", "feedback", version=1, priority="urgent")  # respond in 1 h, resolve in 8 h
    assert [(t.label, t.due_at - T0) for t in thresholds(urgent, [])] == [
        ("sla:response:0.75", timedelta(minutes=45)), ("sla:response:1", timedelta(hours=1)),
        ("sla:resolution:0.75", timedelta(hours=6)), ("sla:resolution:1", timedelta(hours=8))]
    working = _entry("ticket", "in_progress", version=3, priority="urgent", entered_days=0.1)
    assert [t.label for t in thresholds(working, [1])] == ["sla:resolution:0.75", "sla:resolution:1", "1d"]
    assert [t.label for t in thresholds(_entry("ticket", "feedback", version=6, priority="urgent",
                                               first_span=False), [])] == []  # reopened: its own dwell only
    assert [t.label for t in thresholds(_entry("ticket", "resolved", version=4, priority="urgent"), [])] == []


def test_a_reminder_id_is_one_per_item_entry_and_threshold_in_the_item_partition():
    first = reminder_id(DEAL, 3, "3d")
    assert first == reminder_id(DEAL, 3, "3d")
    assert len({first, reminder_id(DEAL, 4, "3d"), reminder_id(DEAL, 3, "7d"), reminder_id(uuid4(), 3, "3d")}) == 4
    assert partition_of(first) == partition_of(DEAL) == 5
    customer = in_partition(9)  # a deal made before home partitions: its events go where its customer is
    assert partition_of(reminder_id(DEAL, 3, "3d", customer)) == 9 != partition_of(first)
    entry = _entry()
    (threshold,) = due(entry, [3], _days(4))
    reminder = Reminder.emit(entry, threshold, "李娜", None, Meta(occurred_at=_days(4), actor="crm reminders"))
    assert reminder.id == first
    (emitted,) = reminder.pending_events
    assert (emitted.item_id, emitted.stage, emitted.entry_version, emitted.threshold, emitted.owner,
            emitted.due_at) == (DEAL, "proposal", 3, "3d", "李娜", _days(3))


def test_stage_thresholds_are_part_of_the_pipeline_definition_and_default_to_none():
    name, stages = DEFAULT_PIPELINES["sales"]
    meta = Meta(occurred_at=T0, actor="setup")
    plain = Pipeline.define("sales", name, stages, meta)
    assert all(stage.keys() == {"key", "label"} for stage in plain.stages)  # stored as before: old events read alike
    assert plain.remind_after("proposal") == [] and plain.remind_after("won") == []
    reminding = Pipeline.define("sales", name, stages, meta, {"proposal": [3, 7.0], "negotiation": [0.5]})
    assert reminding.remind_after("proposal") == [3, 7] and reminding.remind_after("negotiation") == [0.5]
    assert isinstance(reminding.remind_after("proposal")[1], int)  # whole days stay whole
    reminding.set_stage_reminders("proposal", [], Meta(occurred_at=T0, actor="admin"))
    assert reminding.remind_after("proposal") == [] and "remind_after_days" not in reminding.stages[3]
    with pytest.raises(DomainError, match="already has"):
        reminding.set_stage_reminders("negotiation", [0.5], meta)
    with pytest.raises(DomainError, match="unknown stage"):
        reminding.set_stage_reminders("nowhere", [1], meta)
    with pytest.raises(DomainError, match="does not have"):
        Pipeline.define("sales", name, stages, meta, {"nowhere": [1]})


@pytest.mark.parametrize("days", [[0], [-1], [7, 3], [3, 3], ["3"], [True], [4000], list(range(1, 13)), "37"])
def test_bad_thresholds_are_refused_with_a_sentence(days):
    with pytest.raises(DomainError, match="remind|thresholds"):
        check_remind_after_days("proposal", days)


def test_two_accepted_thresholds_never_share_a_label() -> None:
    """Review 15, P2-2: `:g` gave 1000.12 and 1000.125 one label, so one reminder id."""
    days = check_remind_after_days("proposal", [0.5, 3, 1000.12, 1000.125])
    assert [dwell_label(d) for d in days] == ["0.5d", "3d", "1000.12d", "1000.125d"]


def test_an_sla_reminder_is_one_per_ticket_clock_and_threshold_a_dwell_one_per_entry():
    """The SLA clock runs from the opening whatever stage the ticket is in (domain/service_levels.py)."""
    assert reminder_id(DEAL, 1, "sla:resolution:0.75") == reminder_id(DEAL, 4, "sla:resolution:0.75")
    assert reminder_id(DEAL, 4, "sla:resolution:0.75") != entry_reminder_id(DEAL, 4, "sla:resolution:0.75")
    assert reminder_id(DEAL, 1, "sla:resolution:1") != reminder_id(DEAL, 1, "sla:resolution:0.75")
    assert reminder_id(DEAL, 1, "1d") != reminder_id(DEAL, 4, "1d") == entry_reminder_id(DEAL, 4, "1d")


@pytest.mark.parametrize("zone, entered, due_local", [
    # spring forward: 2026-03-08 02:00 EST → 03:00 EDT; autumn back: 2026-10-25 03:00 CEST → 02:00 CET
    ("America/New_York", datetime(2026, 3, 7, 9, 0), datetime(2026, 3, 8, 10, 0)),
    ("Europe/Berlin", datetime(2026, 10, 24, 9, 0), datetime(2026, 10, 25, 8, 0)),
])
def test_days_are_elapsed_24_hours_across_a_dst_change(zone, entered, due_local):
    """**Choice**: "1d" is 24 h elapsed; across a DST change it falls an hour off the entry's wall-clock time."""
    tz = ZoneInfo(zone)
    start = entered.replace(tzinfo=tz)
    entry = StageEntry(DEAL, "deal", "sales", "proposal", 3, start.astimezone(timezone.utc), start, True, "")
    (threshold,) = thresholds(entry, [1])
    assert threshold.due_at - entry.entered_at == timedelta(hours=24)
    assert threshold.due_at.astimezone(tz).replace(tzinfo=None) == due_local
