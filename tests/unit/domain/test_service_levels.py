"""Service levels: the SLA target of every priority and its edges (exactly on the target is in time), what
answers a ticket, who is satisfied and who became loyal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from uuid import UUID

import pytest

from domain.base import Meta
from domain.service_levels import SATISFIED_SCORE, SLA_TARGETS, SlaTarget, is_loyal, is_satisfied, responds
from domain.ticket import Ticket
from domain.vocabulary import TICKET_PRIORITIES

CUSTOMER = UUID("00000000-0000-0000-0000-0000000000c3")
MICROSECOND_HOURS = 1 / 3_600_000_000  # one µs, the read models' resolution, in hours
T = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)  # a first satisfied rating


def test_every_priority_has_a_target_and_urgent_ones_are_tighter() -> None:
    assert set(SLA_TARGETS) == set(TICKET_PRIORITIES)
    by_urgency = [SLA_TARGETS[p] for p in ("urgent", "high", "normal", "low")]
    assert [t.response_hours for t in by_urgency] == [1, 4, 8, 24]
    assert [t.resolution_hours for t in by_urgency] == [8, 24, 72, 168]
    assert all(t.response_hours < t.resolution_hours for t in by_urgency)


@pytest.mark.parametrize("priority", TICKET_PRIORITIES)
def test_a_response_exactly_on_the_target_is_in_time_one_microsecond_later_late(priority: str) -> None:
    target = SLA_TARGETS[priority]
    assert not target.response_late(0)
    assert not target.response_late(target.response_hours)
    assert target.response_late(target.response_hours + MICROSECOND_HOURS)


@pytest.mark.parametrize("priority", TICKET_PRIORITIES)
def test_a_resolution_exactly_on_the_target_is_in_time_one_microsecond_later_late(priority: str) -> None:
    target = SLA_TARGETS[priority]
    assert not target.resolution_late(target.resolution_hours)
    assert target.resolution_late(target.resolution_hours + MICROSECOND_HOURS)


def test_response_and_resolution_are_judged_each_by_its_own_target() -> None:
    target = SlaTarget(response_hours=1, resolution_hours=8)
    assert target.response_late(2) and not target.resolution_late(2)


@pytest.fixture
def ticket(meta_at: Callable[..., Meta]) -> Ticket:
    return Ticket.open(CUSTOMER, "无法登录", "urgent", "phone", meta_at(0))


def test_moving_a_ticket_on_from_open_answers_it(ticket: Ticket, meta_at: Callable[..., Meta]) -> None:
    ticket.assign("赵敏", meta_at(0.1))
    ticket.change_status("in_progress", meta_at(0.2))
    ticket.change_status("waiting_customer", meta_at(0.3))
    opened, assigned, moved_on, waiting = ticket.collect_events()
    assert [responds(e) for e in (opened, assigned, moved_on, waiting)] == [False, False, True, False]


def test_resolving_answers_a_ticket_and_reopening_does_not(ticket: Ticket, meta_at: Callable[..., Meta]) -> None:
    ticket.resolve("已重置密码", meta_at(0.1))  # straight from open
    ticket.reopen("仍无法登录", meta_at(0.2))
    ticket.change_status("in_progress", meta_at(0.3))  # from open again: an answer (the first stays the first)
    _, resolved, reopened, moved_on = ticket.collect_events()
    assert [responds(e) for e in (resolved, reopened, moved_on)] == [True, False, True]


@pytest.mark.parametrize(("score", "satisfied"), [(1, False), (3, False), (4, True), (5, True)])
def test_four_and_five_are_satisfied(score: int, satisfied: bool) -> None:
    assert is_satisfied(score) is satisfied
    assert SATISFIED_SCORE == 4


@pytest.mark.parametrize(("won", "loyal"), [
    ([], False),
    ([T - timedelta(days=1)], False),  # won before being satisfied
    ([T], False),  # at the same instant: not after
    ([T + timedelta(microseconds=1)], True),
    ([T - timedelta(days=1), T + timedelta(days=30)], True),  # any win after counts
])
def test_loyal_is_a_win_strictly_after_the_first_satisfied_rating(won: list[datetime], loyal: bool) -> None:
    assert is_loyal(T, won) is loyal


def test_loyalty_is_judged_on_stored_instants_alike() -> None:
    assert is_loyal(1_000, [999, 1_001]) and not is_loyal(1_000, [1_000])
