"""The segment process on the embedded log: each tier change announced once, by the clock — entering, leaving,
ageing at the exact µs — nothing when nothing changed, nothing again on a repeat (a second process, or the same
one before its read model saw what it recorded), and a forgotten customer leaves every tier without a trace of
their personal data."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
import pytest

from domain.segment_change_rules import SegmentChange
from projections.segment_changes import SegmentChangeQueries
from services.application import CrmApplication
from services.commands import ChangeConsent, ForgetCustomer, LoseDeal, OpenDeal, RegisterCustomer, WinDeal
from services.segment_process import SegmentChangeProcess, run_until_stopped, segments_lock_path
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0, at
from tests.support.edited_history import sqlite_app

MICRO = timedelta(microseconds=1)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def log(tmp_path) -> Iterator[tuple[CrmApplication, ReadModelStore]]:
    """A SQLite log with the default pipelines, and its read store."""
    app = sqlite_app(tmp_path / "crm.sqlite3")
    app.ensure_default_pipelines(at(-30, "setup"))
    with closing(ReadModelStore(app.database)) as store:
        yield app, store
    app.close()


def _changes(crm: CrmApplication) -> list[tuple]:
    return [(e.customer_id, e.old_tier, e.new_tier, e.changed_at) for _, e in crm.read_log()
            if isinstance(e, SegmentChange.Recorded)]


def _customer(crm: CrmApplication, name: str = "张三") -> object:
    return crm.register_customer(RegisterCustomer(name, "华东", "零售", "web", company="杭州云启科技",
                                                  email="zhangsan@example.cn"), at(0))


def _steps(process: SegmentChangeProcess, n: int = 3) -> None:
    for _ in range(n):
        process.run_step()


def _started(log: tuple[CrmApplication, ReadModelStore], days: float) -> tuple[Clock, SegmentChangeProcess]:
    """A process whose clock reads `days` after T0, its first steps taken."""
    clock = Clock(T0 + timedelta(days=days))
    process = SegmentChangeProcess(*log, clock, look_gap=0)
    _steps(process)
    return clock, process


def _steps_at(instant: datetime, clock: Clock, process: SegmentChangeProcess) -> None:
    clock.now = instant
    _steps(process)


def test_entering_each_tier_is_announced_once_with_the_instant_it_was_entered(log):
    crm, store = log
    customer = _customer(crm)
    clock, process = _started(log, 0.5)
    deal = crm.open_deal(OpenDeal(customer, "云服务采购", "200000", owner="李娜"), at(1))  # an open deal: potential
    _steps_at(T0 + timedelta(days=1.5), clock, process)
    crm.win_deal(WinDeal(deal, "签约"), at(2))  # 200,000 CNY in the last 30 days: high value
    _steps_at(T0 + timedelta(days=3), clock, process)
    assert _changes(crm) == [(customer, "", "ordinary", T0), (customer, "ordinary", "potential", T0 + timedelta(days=1)),
                             (customer, "potential", "high_value", T0 + timedelta(days=2))]
    assert SegmentChangeQueries(store).announced(customer) == "high_value"


def test_ageing_is_announced_at_the_exact_microsecond_the_process_waits_for(log):
    crm, store = log
    customer = _customer(crm)
    crm.win_deal(WinDeal(crm.open_deal(OpenDeal(customer, "云服务采购", "200000", owner="李娜"), at(1)), "签约"), at(2))
    limit = T0 + timedelta(days=92)  # 90 days after the purchase R is still 4; a µs later 3: potential
    clock, process = _started(log, 3)
    assert _changes(crm) == [(customer, "", "high_value", T0 + timedelta(days=2))]
    assert process._upcoming == limit + MICRO  # when to look again, by itself
    _steps_at(limit, clock, process)
    assert len(_changes(crm)) == 1  # exactly at the limit: still high value
    _steps_at(limit + MICRO, clock, process)
    clock.now = limit + timedelta(days=400)  # R 2 after 180 days (ordinary), then nothing more changes the tier
    _steps(process)
    assert _changes(crm)[1:] == [(customer, "high_value", "potential", limit + MICRO),
                                 (customer, "potential", "ordinary", T0 + timedelta(days=182) + MICRO)]


def test_no_change_no_event_and_no_look_while_nothing_moves(log):
    crm, store = log
    _customer(crm)
    clock, process = _started(log, 1)
    count = crm.event_count()
    clock.now += timedelta(days=30)
    assert process.run_step() == 0 and process.run_step() == 0
    assert crm.event_count() == count
    assert process._wait_to_look(clock.now) is None  # nothing moved, no change falls due: the tiers are not read


def test_a_tier_entered_and_left_while_nobody_announced_is_not_announced(log):
    crm, store = log
    customer = _customer(crm)
    clock, process = _started(log, 0.5)
    deal = crm.open_deal(OpenDeal(customer, "云服务采购", "1000", owner="李娜"), at(1))  # potential …
    crm.lose_deal(LoseDeal(deal, "价格", ""), at(2))  # … and ordinary again, before the process looked
    _steps_at(T0 + timedelta(days=3), clock, process)
    assert _changes(crm) == [(customer, "", "ordinary", T0)]


def test_a_repeat_records_nothing_new_a_second_process_or_one_that_did_not_see_its_own_record(log):
    crm, store = log
    first, second = _customer(crm), _customer(crm, "李四")
    clock = Clock(T0 + timedelta(days=1))
    blind = SegmentChangeProcess(crm, store, clock, look_gap=0)
    blind.announcements.catch_up = lambda strict=True: 0  # as after a kill -9 between recording and applying
    blind.run_step()
    assert len(_changes(crm)) == 2
    again = blind.queries.due(clock.now)  # its read model does not know what it recorded: the same two changes
    assert len(again) == 2 and blind._save(again, clock.now) == 0  # the same ids: refused by the log, counted done
    blind._dirty = True
    blind.run_step()
    other = SegmentChangeProcess(crm, ReadModelStore(crm.database), clock, look_gap=0)
    _steps(other)
    assert sorted(_changes(crm)) == sorted([(first, "", "ordinary", T0), (second, "", "ordinary", T0)])


def test_a_forgotten_customer_leaves_every_tier_and_no_event_carries_their_personal_data(log):
    crm, store = log
    customer = _customer(crm)
    clock, process = _started(log, 1)
    crm.forget_customer(ForgetCustomer(customer), at(5))
    _steps_at(T0 + timedelta(days=6), clock, process)
    _steps_at(T0 + timedelta(days=600), clock, process)
    assert _changes(crm) == [(customer, "", "ordinary", T0), (customer, "ordinary", "", T0 + timedelta(days=5))]
    published = b"".join(orjson.dumps(crm.mapper.to_sealed_event(n).__dict__, default=str)
                         for n in crm.recorder.select_notifications(1, 1000)
                         if n.topic.endswith("SegmentChange.Recorded"))
    assert published and not any(secret.encode() in published for secret in ("张三", "杭州云启科技", "zhangsan"))


def test_withdrawing_marketing_consent_leaves_every_tier_nothing_while_withdrawn_granting_again_enters_it(log):
    """Review A P2-3: crm.segments tells marketing tools whom to address; a customer who withdrew consent leaves
    every tier at the withdrawal (as when forgotten), no change of theirs is announced while it stays withdrawn,
    and granting it again announces the tier they are in then, at the grant."""
    crm, store = log
    customer, other = _customer(crm), _customer(crm, "李四")
    crm.change_consent(ChangeConsent(customer, True), at(0.1))  # consent is not given at registration
    clock, process = _started(log, 0.5)
    crm.change_consent(ChangeConsent(customer, False), at(1))
    crm.change_consent(ChangeConsent(other, True), at(1))  # granted, never withdrawn: nothing changes
    _steps_at(T0 + timedelta(days=1.5), clock, process)
    crm.open_deal(OpenDeal(customer, "云服务采购", "10000", owner="李娜"), at(2))  # potential, while withdrawn
    _steps_at(T0 + timedelta(days=2.5), clock, process)
    assert SegmentChangeQueries(store).announced(customer) == ""
    crm.change_consent(ChangeConsent(customer, True), at(3))
    _steps_at(T0 + timedelta(days=4), clock, process)
    crm.change_consent(ChangeConsent(customer, False), at(5))  # withdrawn again, and forgotten later: one leave
    crm.forget_customer(ForgetCustomer(customer), at(6))
    _steps_at(T0 + timedelta(days=7), clock, process)
    assert [c[1:] for c in _changes(crm) if c[0] == customer] == [
        ("", "ordinary", T0), ("ordinary", "", T0 + timedelta(days=1)), ("", "potential", T0 + timedelta(days=3)),
        ("potential", "", T0 + timedelta(days=5))]
    assert [c[1:] for c in _changes(crm) if c[0] == other] == [("", "ordinary", T0)]
    assert SegmentChangeQueries(store).due(clock.now) == []


def test_consent_withdrawn_before_the_first_announcement_announces_nothing_until_granted_again(log):
    crm, store = log
    customer = _customer(crm)
    crm.change_consent(ChangeConsent(customer, True), at(0.1))
    crm.change_consent(ChangeConsent(customer, False), at(0.25))
    clock, process = _started(log, 0.5)
    assert _changes(crm) == []
    crm.change_consent(ChangeConsent(customer, True), at(1))
    _steps_at(T0 + timedelta(days=1.5), clock, process)
    assert _changes(crm) == [(customer, "", "ordinary", T0 + timedelta(days=1))]


def test_one_process_per_database_announces_the_other_stands_by(log):
    crm, _ = log
    lock = segments_lock_path(crm)
    assert lock is not None and "segment-changes" in lock.name
    _customer(crm)
    stops = [threading.Event(), threading.Event()]
    threads = [threading.Thread(target=run_until_stopped, args=(crm, stop), kwargs={"poll": 0.02}) for stop in stops]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 20
        while len(_changes(crm)) < 1:
            assert time.monotonic() < deadline, "no announcement"
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(20)
    assert len(_changes(crm)) == 1


def test_events_bring_a_look_at_most_once_per_gap_a_change_by_ageing_at_its_instant(log):
    crm, store = log
    buyer = _customer(crm)
    crm.win_deal(WinDeal(crm.open_deal(OpenDeal(buyer, "云服务采购", "200000", owner="李娜"), at(1)), "签约"), at(2))
    clock = Clock(T0 + timedelta(days=3))
    process = SegmentChangeProcess(crm, store, clock, look_gap=3600)
    process.run_step()  # the first look is at once
    newcomer = _customer(crm, "李四")
    process.run_step()
    assert len(_changes(crm)) == 1 and process._wait_to_look(clock.now) > 3000  # the segments moved: looked at later
    clock.now = T0 + timedelta(days=92) + MICRO  # … unless a change by ageing falls due first
    process.run_step()
    assert _changes(crm)[1:] == [(newcomer, "", "ordinary", T0), (buyer, "high_value", "potential", clock.now)]
