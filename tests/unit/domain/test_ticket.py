"""Ticket: worked through open/in_progress/waiting_customer, resolved, rated (CSAT 1-5), closed or reopened."""

from __future__ import annotations

import re
from uuid import UUID

import pytest

from domain.errors import DomainError
from domain.ticket import Ticket

CUSTOMER = UUID("00000000-0000-0000-0000-0000000000c2")


@pytest.fixture
def ticket(meta_at) -> Ticket:
    return Ticket.open(CUSTOMER, "发票抬头开错了", "high", "email", meta_at(0))


@pytest.fixture
def resolved(ticket, meta_at) -> Ticket:
    ticket.assign("赵敏", meta_at(1))
    ticket.resolve("已重新开具发票", meta_at(2))
    return ticket


def test_open_starts_open_unassigned_unrated(ticket):
    assert (ticket.status, ticket.assignee, ticket.rated) == ("open", None, False)
    assert (ticket.customer_id, ticket.subject, ticket.priority, ticket.channel) == (
        CUSTOMER, "发票抬头开错了", "high", "email")
    assert isinstance(ticket.pending_events[0], Ticket.Opened)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "high", "email"), "ticket subject must not be empty"),
        (("无法登录", "critical", "email"), "unknown priority 'critical'; expected one of: high, low, normal, urgent"),
        (("无法登录", "low", "fax"), "unknown channel 'fax'"),
    ],
)
def test_open_refusals(meta_at, args, message):
    with pytest.raises(DomainError, match=re.escape(message)):
        Ticket.open(CUSTOMER, *args, meta_at(0))


def test_status_changes_between_working_statuses(ticket, meta_at):
    ticket.change_status("in_progress", meta_at(1))
    ticket.change_status("waiting_customer", meta_at(2))
    assert ticket.status == "waiting_customer"
    event = ticket.pending_events[-1]
    assert isinstance(event, Ticket.StatusChanged)
    assert (event.from_status, event.to_status) == ("in_progress", "waiting_customer")


@pytest.mark.parametrize(
    ("to_status", "message"),
    [
        ("done", "unknown ticket status 'done'; expected one of: closed, in_progress, open, resolved, waiting_customer"),
        ("resolved", "use resolve/close for status 'resolved'"),
        ("closed", "use resolve/close for status 'closed'"),
        ("open", "ticket is already open"),
    ],
)
def test_status_change_refusals(ticket, meta_at, refuse, to_status, message):
    refuse(ticket, re.escape(message), lambda: ticket.change_status(to_status, meta_at(1)))


def test_resolved_ticket_refuses_working_commands(resolved, meta_at, refuse):
    refuse(resolved, "cannot change the status of a resolved ticket; reopen it first",
           lambda: resolved.change_status("in_progress", meta_at(3)))
    refuse(resolved, "cannot assign a resolved ticket; reopen it first", lambda: resolved.assign("张无忌", meta_at(3)))
    refuse(resolved, "cannot resolve a resolved ticket", lambda: resolved.resolve("again", meta_at(3)))


def test_assign_refusals(ticket, meta_at, refuse):
    ticket.assign("赵敏", meta_at(1))
    assert ticket.pending_events[-1].assignee == "赵敏"
    refuse(ticket, "ticket is already assigned to '赵敏'", lambda: ticket.assign(" 赵敏 ", meta_at(2)))
    refuse(ticket, "assignee must not be empty", lambda: ticket.assign("", meta_at(2)))


def test_resolve_records_resolution(resolved):
    assert resolved.status == "resolved"
    event = resolved.pending_events[-1]
    assert isinstance(event, Ticket.Resolved)
    assert event.resolution == "已重新开具发票"


def test_resolve_requires_resolution_text(ticket, meta_at, refuse):
    refuse(ticket, "resolution must not be empty", lambda: ticket.resolve("  ", meta_at(1)))


@pytest.mark.parametrize("score", [1, 5])
def test_rating_a_resolved_ticket(resolved, meta_at, score):
    resolved.rate(score, "处理很快", meta_at(3))
    assert resolved.rated is True
    event = resolved.pending_events[-1]
    assert isinstance(event, Ticket.SatisfactionRated)
    assert (event.score, event.comment) == (score, "处理很快")


@pytest.mark.parametrize("score", [0, 6, -1, 10])
def test_rating_outside_one_to_five_is_refused(resolved, meta_at, refuse, score):
    refuse(resolved, re.escape(f"satisfaction score must be an integer from 1 to 5 (got {score!r})"),
           lambda: resolved.rate(score, "", meta_at(3)))


@pytest.mark.parametrize("score", [True, False, 4.0, "5", None, 3.5])
def test_rating_that_is_not_an_int_is_refused(resolved, meta_at, refuse, score):
    refuse(resolved, re.escape(f"satisfaction score must be an integer from 1 to 5 (got {score!r})"),
           lambda: resolved.rate(score, "", meta_at(3)))


@pytest.mark.parametrize("working_status", ["open", "in_progress", "waiting_customer"])
def test_rating_an_unresolved_ticket_is_refused(ticket, meta_at, refuse, working_status):
    if working_status != "open":
        ticket.change_status(working_status, meta_at(1))
    refuse(ticket, "a ticket is rated only after it is resolved", lambda: ticket.rate(5, "", meta_at(2)))


def test_rating_twice_is_refused(resolved, meta_at, refuse):
    resolved.rate(4, "", meta_at(3))
    refuse(resolved, "this resolution has already been rated", lambda: resolved.rate(5, "改评", meta_at(4)))
    resolved.close(meta_at(4))
    refuse(resolved, "this resolution has already been rated", lambda: resolved.rate(5, "改评", meta_at(5)))


def test_closed_unrated_ticket_can_be_rated(resolved, meta_at):
    resolved.close(meta_at(3))
    resolved.rate(3, "一般", meta_at(4))
    assert (resolved.status, resolved.rated) == ("closed", True)


def test_reopened_ticket_can_be_rated_again_once_resolved_again(resolved, meta_at, refuse):
    resolved.rate(2, "没解决", meta_at(3))
    resolved.reopen("客户说发票还是错的", meta_at(4))
    assert (resolved.status, resolved.rated) == ("open", False)
    assert resolved.pending_events[-1].reason == "客户说发票还是错的"
    refuse(resolved, "a ticket is rated only after it is resolved", lambda: resolved.rate(5, "", meta_at(5)))
    resolved.resolve("作废重开", meta_at(5))
    resolved.rate(5, "这次好了", meta_at(6))
    scores = [e.score for e in resolved.pending_events if isinstance(e, Ticket.SatisfactionRated)]
    assert scores == [2, 5]


def test_reopen_refusals(resolved, meta_at, refuse):
    other = Ticket.open(CUSTOMER, "无法登录", "urgent", "phone", meta_at(0))
    refuse(other, "only a resolved or closed ticket can be reopened; this one is open",
           lambda: other.reopen("?", meta_at(1)))
    refuse(resolved, "reopen reason must not be empty", lambda: resolved.reopen("", meta_at(3)))


def test_close_only_a_resolved_ticket(ticket, meta_at, refuse):
    refuse(ticket, "only a resolved ticket can be closed; this one is open", lambda: ticket.close(meta_at(1)))
    ticket.resolve("已处理", meta_at(1))
    ticket.close(meta_at(2))
    assert ticket.status == "closed"
    refuse(ticket, "only a resolved ticket can be closed; this one is closed", lambda: ticket.close(meta_at(3)))


def test_closed_ticket_can_be_reopened(resolved, meta_at):
    resolved.close(meta_at(3))
    resolved.reopen("问题复发", meta_at(4))
    assert resolved.status == "open"
    assert resolved.assignee == "赵敏"  # reopening keeps whoever was working it


def test_customer_reply(resolved, meta_at, refuse):
    resolved.customer_replied("谢谢，收到了", meta_at(3))
    assert resolved.pending_events[-1].message == "谢谢，收到了"
    assert resolved.status == "resolved"  # a reply alone does not reopen
    refuse(resolved, "message must not be empty", lambda: resolved.customer_replied(" ", meta_at(3)))
    resolved.close(meta_at(4))
    refuse(resolved, "ticket is closed; reopen it to continue the conversation",
           lambda: resolved.customer_replied("还有个问题", meta_at(5)))


def test_ticket_command_earlier_than_last_event_is_refused(resolved, meta_at, refuse):
    refuse(resolved, "is before this Ticket's last event", lambda: resolved.rate(5, "", meta_at(1)))


def test_replaying_a_ticket(resolved, meta_at, assert_replays):
    resolved.rate(2, "", meta_at(3))
    resolved.reopen("复发", meta_at(4))
    resolved.change_status("in_progress", meta_at(5))
    resolved.resolve("彻底修复", meta_at(6))
    resolved.close(meta_at(7))
    rebuilt = assert_replays(resolved)
    assert (rebuilt.status, rebuilt.rated, rebuilt.assignee) == ("closed", False, "赵敏")
    assert rebuilt.version == 8
