"""The reminder process on the embedded log: each (item, stage entry, threshold) reminded once, by the clock,
never of a stay that is over; a second process, or the same one after a crash, cannot remind twice."""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from domain.reminder_rules import Reminder
from projections.reminders import DueThreshold, ReminderQueries, RemindersReadModel
from services.application import CrmApplication
from services.commands import (AssignTicket, ChangeOwner, ChangeStage, ChangeTicketStatus, OpenDeal, OpenTicket,
                               RegisterCustomer, SetStageReminders)
from services.projection_runtime.projector import Projector
from services.projection_runtime.courtesy import GRACE
from services.reminder_process import ReminderProcess, reminders_lock_path, run_until_stopped
from services.projection_runtime.background import try_lock
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0, at


class Clock:
    def __init__(self, days: float = 0) -> None:
        self.now = T0 + timedelta(days=days)

    def __call__(self) -> datetime:
        return self.now

    def at(self, days: float) -> None:
        self.now = T0 + timedelta(days=days)


@pytest.fixture
def crm(tmp_path) -> Iterator[CrmApplication]:
    app = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}"))
    app.ensure_default_pipelines(at(-30, "setup"))
    app.set_stage_reminders(SetStageReminders("sales", "lead", [3, 7]), at(-29, "admin"))
    yield app
    app.close()


@pytest.fixture
def store(crm: CrmApplication, request: pytest.FixtureRequest) -> ReadModelStore:
    opened = ReadModelStore(crm.database)
    request.addfinalizer(opened.close)
    return opened


def _reminders(crm: CrmApplication) -> list[Reminder.Emitted]:
    return [event for _, event in crm.read_log() if isinstance(event, Reminder.Emitted)]


def _deal(crm: CrmApplication, days: float = 1) -> tuple:
    customer = crm.register_customer(RegisterCustomer("张三", "华东", "零售", "web", company="杭州云启科技"), at(0))
    return customer, crm.open_deal(OpenDeal(customer, "云服务采购", "1000", owner="李娜"), at(days))


def test_reminds_once_per_threshold_as_time_passes_naming_owner_item_and_customer(crm, store):
    customer, deal = _deal(crm)
    clock = Clock(3.9)
    process = ReminderProcess(crm, store, clock)
    process.run_step()
    assert _reminders(crm) == []  # due on day 4 (entered on day 1 + 3 days)
    clock.at(4)
    process.run_step()
    process.run_step()
    clock.at(20)
    for _ in range(3):
        process.run_step()
    reminded = _reminders(crm)
    assert [(r.item_id, r.threshold, r.owner, r.customer_id, r.occurred_at) for r in reminded] == [
        (deal, "3d", "李娜", customer, T0 + timedelta(days=4)), (deal, "7d", "李娜", customer, clock.now)]
    (first, second) = ReminderQueries(store, crm.keys.unseal_all_marks).open_at(clock.now)
    assert (first.item, first.customer, first.owner, first.stage, first.threshold) == \
        ("云服务采购", "杭州云启科技", "李娜", "lead", "3d")
    assert second.threshold == "7d"


def test_a_reminder_saved_before_a_crash_is_not_saved_again_by_the_next_process(crm, store):
    """Killed after saving, before its read model saw the reminder: the next process finds it due again, and the
    log refuses the second save (same id)."""
    _, deal = _deal(crm)
    clock = Clock(5)
    first = ReminderProcess(crm, store, clock)
    first.run_step()
    (pending,) = first.queries.due(clock.now)  # saved, not yet in its read model: as a kill -9 leaves it
    assert pending == DueThreshold(deal, 1, "3d", T0 + timedelta(days=4)) and len(_reminders(crm)) == 1
    assert ReminderProcess(crm, store, clock).emit(pending, clock.now) is False  # refused by the log: same id
    assert len(_reminders(crm)) == 1
    ReminderProcess(crm, store, clock).run_step()
    assert first.queries.due(clock.now) == [] and len(_reminders(crm)) == 1


def test_no_stale_reminder_for_an_item_that_moved_while_the_process_was_down(crm, store):
    _, deal = _deal(crm)
    clock = Clock(2)
    process = ReminderProcess(crm, store, clock)
    process.run_step()
    due_before_move = process.queries.due(T0 + timedelta(days=30))
    crm.change_stage(ChangeStage(deal, "first_contact"), at(6))  # threshold of day 4 passed while down
    clock.at(30)
    assert [process.emit(t, clock.now) for t in due_before_move] == [False, False]  # the log says: moved on
    process.run_step()
    assert _reminders(crm) == [] and process.queries.due(clock.now) == []


def test_the_owner_named_is_the_owner_when_reminded_and_a_removed_threshold_reminds_of_nothing(crm, store):
    _, deal = _deal(crm)
    crm.change_owner(ChangeOwner(deal, "王伟"), at(2))
    crm.set_stage_reminders(SetStageReminders("sales", "lead", [7]), at(2.5, "admin"))
    process = ReminderProcess(crm, store, Clock(9))
    process.run_step()
    process.run_step()
    assert [(r.threshold, r.owner) for r in _reminders(crm)] == [("7d", "王伟")]


def test_thresholds_given_to_a_stage_remind_of_items_already_in_it(crm, store):
    _, deal = _deal(crm)
    crm.change_stage(ChangeStage(deal, "proposal"), at(2))
    process = ReminderProcess(crm, store, Clock(10))
    process.run_step()
    crm.set_stage_reminders(SetStageReminders("sales", "proposal", [1]), at(10, "admin"))
    process.run_step()
    process.run_step()
    assert [(r.stage, r.threshold, r.due_at) for r in _reminders(crm)] == [("proposal", "1d", T0 + timedelta(days=3))]


def test_a_ticket_is_reminded_of_its_service_levels_and_stops_when_answered(crm, store):
    customer, _ = _deal(crm, days=0.5)
    ticket = crm.open_ticket(OpenTicket(customer, "系统登录失败", "phone", priority="urgent"), at(1))
    crm.assign_ticket(AssignTicket(ticket, "赵敏"), at(1.01))
    clock = Clock(1 + 50 / 1440)  # 50 minutes after opening: 75 % of the 1-hour response target
    process = ReminderProcess(crm, store, clock)
    process.run_step()
    crm.change_ticket_status(ChangeTicketStatus(ticket, "in_progress"), at(1 + 55 / 1440))
    clock.at(1 + 7 / 24)  # 7 hours: 75 % of the 8-hour resolution target, in the new stage entry
    process.run_step()
    process.run_step()
    assert [(r.stage, r.threshold, r.owner) for r in _reminders(crm) if r.item_id == ticket] == [
        ("feedback", "sla:response:0.75", "赵敏"), ("in_progress", "sla:resolution:0.75", "赵敏")]


def test_one_process_per_database_reminds(crm, store):
    path = reminders_lock_path(crm)
    assert path is not None and path.name.startswith("crm.sqlite3") and "reminders" in path.name
    stop = threading.Event()
    first = threading.Thread(target=run_until_stopped, args=(crm, stop), kwargs={"poll": 0.05})
    first.start()
    try:
        with open(path, "a+") as handle:
            deadline = time.monotonic() + 10
            while try_lock(handle):  # not taken yet: give it back and look again
                fcntl.flock(handle, fcntl.LOCK_UN)
                assert time.monotonic() < deadline, "the process never took the lock"
                time.sleep(0.05)
    finally:
        stop.set()
        first.join(10)
    assert not first.is_alive()


def test_the_process_leaves_the_read_model_to_another_projector_that_feeds_it(crm, store):
    """Two feeders of one read model race (the loser of each batch pauses and logs a warning): while
    `crm projections follow` moves it, the process only reads it; when nobody has for 2 s, it feeds it again."""
    follower = Projector(crm, store, [RemindersReadModel()])
    process = ReminderProcess(crm, store, Clock(0))
    process.run_step()  # nobody else feeds it: the process does
    _deal(crm)
    follower.catch_up()
    crm.change_owner(ChangeOwner(_deal(crm)[1], "王伟"), at(2))
    assert process.run_step() == 0 and follower.positions()["reminders"] < crm.event_count()  # left to it
    process.feeder._other_moved_at -= GRACE  # two seconds later, the follower gone
    assert process.run_step() > 0 and follower.positions()["reminders"] == crm.event_count()


def test_a_step_saves_its_reminders_together_and_one_already_in_the_log_does_not_hold_back_the_others(crm, store):
    _deal(crm)
    _deal(crm, days=1.5)
    Projector(crm, store, [RemindersReadModel()]).catch_up()
    process = ReminderProcess(crm, store, Clock(6))
    first, second = [process.prepare(t, Clock(6).now) for t in process.queries.due(Clock(6).now)]
    assert process._save([first]) == 1
    assert process._save([first, second]) == 1  # the batch refused as a whole, then each alone: the second saved
    assert sorted(r.originator_id for r in _reminders(crm)) == sorted([first.id, second.id])


def test_rows_the_log_disagrees_with_never_hold_back_later_reminders(crm, store, monkeypatch):
    """Review 15, P1-3: a due row `prepare` refuses (its item left that entry, its threshold is not the
    stage's by the log) stayed at the head of the work list; with a batch of them no reminder was ever emitted
    again. They are passed over until the read model moves them."""
    customer, stuck = _deal(crm, days=1)
    genuine = crm.open_deal(OpenDeal(customer, "真的", "1000", owner="李娜"), at(2))
    process = ReminderProcess(crm, store, Clock(days=10), batch=1)
    real = process._prepared
    monkeypatch.setattr(process, "_prepared", lambda t, events, now: None if t.item_id == stuck
                        else real(t, events, now))
    for _ in range(4):
        process.run_step()
    assert sorted(e.threshold for e in _reminders(crm) if e.item_id == genuine) == ["3d", "7d"]
    assert not [e for e in _reminders(crm) if e.item_id == stuck]


def test_rows_passed_over_are_forgotten_once_the_read_model_moves_them_and_never_exceed_the_cap(crm, store,
                                                                                            monkeypatch):
    """The rows passed over (`_refused`) never shrank: a long-running process kept every one it ever met."""
    customer, stuck = _deal(crm, days=1)
    process = ReminderProcess(crm, store, Clock(days=10))
    real = process._prepared
    monkeypatch.setattr(process, "_prepared", lambda t, events, now: None if t.item_id == stuck
                        else real(t, events, now))
    process.run_step()
    assert {key[:3] for key in process._refused} == {(stuck, 1, "3d"), (stuck, 1, "7d")}
    crm.change_stage(ChangeStage(stuck, "first_contact"), at(9))  # the read model closes its rows
    process.run_step()
    assert process._refused == {}
    monkeypatch.setattr("services.reminder_process.REFUSED_CAP", 3)
    for n in range(5):
        process._refuse(DueThreshold(stuck, n, "3d", T0))
    assert [key[1] for key in process._refused] == [2, 3, 4]  # the oldest forgotten first


def test_an_sla_threshold_is_reminded_once_per_clock_though_the_ticket_moves_on(crm, store):
    """Issue 15: a ticket reminded of 75 % of its resolution target while waiting in feedback was reminded of it
    again on reaching in_progress (a new stage entry, so a new id). The SLA clock runs from the opening to the
    resolution whatever the stage (domain/service_levels.py): one reminder per (ticket, clock, threshold)."""
    customer, _ = _deal(crm, days=0.5)
    ticket = crm.open_ticket(OpenTicket(customer, "打印机卡纸", "phone", priority="urgent"), at(1))
    crm.assign_ticket(AssignTicket(ticket, "赵敏"), at(1.01))
    clock = Clock(1 + 6.5 / 24)  # 6.5 h in feedback: past 75 % of the 8-hour resolution target, and the response
    process = ReminderProcess(crm, store, clock)
    process.run_step()
    crm.change_ticket_status(ChangeTicketStatus(ticket, "in_progress"), at(1 + 6.6 / 24))
    for hours in (6.7, 7.5, 9):  # the 0.75 threshold, passed, is due in the new entry too: not again
        clock.at(1 + hours / 24)
        process.run_step()
        process.run_step()
    labels = [(r.stage, r.threshold) for r in _reminders(crm) if r.item_id == ticket]
    assert labels == [("feedback", "sla:response:0.75"), ("feedback", "sla:response:1"),
                      ("feedback", "sla:resolution:0.75"), ("in_progress", "sla:resolution:1")]
    assert process.queries.due(clock.now) == []  # nothing left to do: no row the log would refuse forever
    (open_now,) = ReminderQueries(store, crm.keys.unseal_all_marks).open_at(clock.now)
    assert (open_now.stage, open_now.threshold) == ("in_progress", "sla:resolution:1")
