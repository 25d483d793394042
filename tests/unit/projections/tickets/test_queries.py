"""Service tickets as of an instant: the incremental read model and a replay must both give these answers."""

from collections.abc import Callable, Iterator
from datetime import datetime
from uuid import UUID

import pytest

from domain.base import Meta
from projections.tickets import Satisfaction, TicketQueries, TicketReport, TicketsReadModel
from services.application import CrmApplication
from services.commands import (AssignTicket, ChangeTicketStatus, CloseTicket, OpenDeal, OpenTicket, RateTicket,
                               RegisterCustomer, ReopenTicket, ResolveTicket, WinDeal)
from services.projection_runtime.projector import Projector
from services.storage.read_model_store import ReadModelStore
from services.projection_runtime.replay import replay_until
from services.settings import database_from_url
from tests.conftest import at

Report = Callable[[datetime], TicketReport]


def h(hours: float, actor: str = "客服") -> Meta:
    """Meta `hours` after 1 March 2026 09:00 UTC."""
    return at(hours / 24, actor)


def when(hours: float) -> datetime:
    return h(hours).occurred_at


@pytest.fixture
def history(crm: CrmApplication) -> dict[str, UUID]:
    """A (urgent K1, high K2) wins a deal after rating K1 5; B (normal K3, low K4) won before rating K3.

    K1 is answered in 0.5 h, resolved in 6 h, rated 5 and closed. K2 is answered in 5 h (late), resolved
    in 36 h (late), rated 2, reopened at h80, resolved again at h90 (66 h after opening) and rated 4.
    K3 is resolved directly in 2 h and rated 4. K4 (opened h96) is never touched.
    """
    a = crm.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", company="某公司"), h(0))
    b = crm.register_customer(RegisterCustomer("李四", "华南", "零售", "event", company="另一公司"), h(0))
    deal_a = crm.open_deal(OpenDeal(a, "增购", "100", owner="李娜"), h(0))
    deal_b = crm.open_deal(OpenDeal(b, "首单", "100", owner="李娜"), h(0))
    crm.win_deal(WinDeal(deal_b), h(40))
    k1 = crm.open_ticket(OpenTicket(a, "系统登录失败", "phone", priority="urgent"), h(24))
    k2 = crm.open_ticket(OpenTicket(a, "发票开具问题", "email", priority="high"), h(24))
    crm.assign_ticket(AssignTicket(k1, "赵磊"), h(24))
    crm.change_ticket_status(ChangeTicketStatus(k1, "in_progress"), h(24.5))
    crm.resolve_ticket(ResolveTicket(k1, "已远程协助处理"), h(30))
    crm.rate_ticket(RateTicket(k1, 5, "很及时"), h(36))
    crm.close_ticket(CloseTicket(k1), h(40))
    crm.assign_ticket(AssignTicket(k2, "吴艳"), h(25))
    crm.change_ticket_status(ChangeTicketStatus(k2, "in_progress"), h(29))
    crm.resolve_ticket(ResolveTicket(k2, "已重开发票"), h(60))
    crm.rate_ticket(RateTicket(k2, 2, "太慢"), h(70))
    crm.reopen_ticket(ReopenTicket(k2, "问题再次出现"), h(80))
    crm.change_ticket_status(ChangeTicketStatus(k2, "in_progress"), h(81))
    crm.resolve_ticket(ResolveTicket(k2, "已更正抬头"), h(90))
    crm.rate_ticket(RateTicket(k2, 4, ""), h(100))
    k3 = crm.open_ticket(OpenTicket(b, "需要培训支持", "web"), h(48))
    crm.assign_ticket(AssignTicket(k3, "周涛"), h(48))
    crm.resolve_ticket(ResolveTicket(k3, "已安排培训"), h(50))
    crm.rate_ticket(RateTicket(k3, 4, ""), h(52))
    k4 = crm.open_ticket(OpenTicket(b, "续费流程咨询", "email", priority="low"), h(96))
    crm.win_deal(WinDeal(deal_a), h(120))
    return {"a": a, "b": b, "k1": k1, "k2": k2, "k3": k3, "k4": k4}


def _built(crm: CrmApplication, limit: int = 5000) -> ReadModelStore:
    store = ReadModelStore(database_from_url("memory://"))
    Projector(crm, store, [TicketsReadModel()]).catch_up(limit=limit)
    return store


@pytest.fixture(params=["read model", "replay"])
def tickets(request: pytest.FixtureRequest, crm: CrmApplication, history: dict[str, UUID]) -> Iterator[Report]:
    """The ticket report at an instant, from the incremental read model or from a replay up to it."""
    if request.param == "replay":
        yield lambda instant: TicketQueries(replay_until(crm, [TicketsReadModel()], instant),
                                           crm.keys.unseal_all_marks).report(instant)
        return
    store = _built(crm)
    yield TicketQueries(store, crm.keys.unseal_all_marks).report
    store.close()


def test_backlog_per_status_priority_and_assignee(tickets: Report) -> None:
    backlog = tickets(when(130)).backlog

    assert backlog.per_status == {"open": 1, "in_progress": 0, "waiting_customer": 0, "resolved": 2, "closed": 1}
    assert backlog.total == 1  # only the open K4: resolved and closed tickets are no longer worked on
    assert backlog.per_priority == {"low": 1, "normal": 0, "high": 0, "urgent": 0}
    assert backlog.per_assignee == {"(unassigned)": 1}


def test_backlog_takes_status_as_of_the_instant_and_ignores_later_tickets(tickets: Report) -> None:
    backlog = tickets(when(85)).backlog  # K2 reopened and back in progress; K4 not opened yet

    assert backlog.per_status == {"open": 0, "in_progress": 1, "waiting_customer": 0, "resolved": 1, "closed": 1}
    assert backlog.total == 1 and backlog.per_assignee == {"吴艳": 1}  # only K2 is being worked on


def test_first_response_and_resolution_times(tickets: Report) -> None:
    report = tickets(when(130))

    assert report.first_response.count == 3  # K4 is unanswered
    assert report.first_response.median_hours == pytest.approx(2.0)  # 0.5, 2 (K3 resolved directly), 5
    assert report.first_response.p90_hours == pytest.approx(4.4)
    assert report.resolution.count == 3
    assert report.resolution.median_hours == pytest.approx(6.0)  # 2, 6, 66 (K2's latest resolution)
    assert report.resolution.p90_hours == pytest.approx(54.0)


def test_a_reopened_ticket_has_no_resolution_time_until_resolved_again(tickets: Report) -> None:
    resolution = tickets(when(85)).resolution

    assert (resolution.count, resolution.median_hours) == (2, pytest.approx(4.0))  # K1 6 h, K3 2 h


def test_sla_breaches_per_priority_and_the_breaching_tickets(tickets: Report, history: dict[str, UUID]) -> None:
    sla = tickets(when(130)).sla

    assert sla.first_response_breaches == {"low": 1, "normal": 0, "high": 1, "urgent": 0}  # K4 unanswered, K2 late
    assert sla.resolution_breaches == {"low": 0, "normal": 0, "high": 1, "urgent": 0}  # K2: 66 h > 24 h
    assert [(b.ticket_id, b.first_response_late, b.resolution_late) for b in sla.breaching] == [
        (history["k4"], True, False), (history["k2"], True, True)]  # still unresolved first
    assert (sla.breaching[0].first_response_hours, sla.breaching[1].resolution_hours) == (34.0, 66.0)


def test_an_unanswered_ticket_breaches_only_once_past_its_deadline(tickets: Report) -> None:
    assert tickets(when(120)).sla.first_response_breaches["low"] == 0  # K4: exactly 24 h, its deadline
    assert tickets(when(121)).sla.first_response_breaches["low"] == 1


def test_a_reopened_ticket_breaches_resolution_while_unresolved(tickets: Report, history: dict[str, UUID]) -> None:
    sla = tickets(when(85)).sla

    assert [(b.ticket_id, b.status, b.resolution_hours) for b in sla.breaching] == [
        (history["k2"], "in_progress", 61.0)]


def test_csat_overall_and_per_assignee_at_the_time_of_rating(tickets: Report) -> None:
    csat = tickets(when(130)).csat

    assert csat.overall == Satisfaction(ratings=4, average=3.75, satisfied_share=0.75)  # 5, 2, 4, 4
    assert csat.per_assignee == {"吴艳": Satisfaction(2, 3.0, 0.5), "周涛": Satisfaction(1, 4.0, 1.0),
                                 "赵磊": Satisfaction(1, 5.0, 1.0)}


def test_service_funnel_from_feedback_to_satisfied(tickets: Report) -> None:
    early, late = tickets(when(75)), tickets(when(130))

    assert (early.funnel.feedback, early.funnel.resolved, early.funnel.surveyed, early.funnel.satisfied) == (3, 3, 3, 2)
    assert [(s.step, s.count, s.conversion) for s in late.funnel.steps()] == [
        ("feedback", 4, None), ("resolved", 3, 0.75), ("surveyed", 3, 1.0), ("satisfied", 3, 1.0), ("loyal", 1, 0.5)]


def test_loyal_customers_won_a_deal_after_their_satisfied_rating(tickets: Report) -> None:
    before_win, after_win = tickets(when(110)).funnel, tickets(when(130)).funnel

    assert (before_win.satisfied_customers, before_win.loyal) == (2, 0)
    assert (after_win.satisfied_customers, after_win.loyal) == (2, 1)  # A; B's deal was won before B's rating


def test_the_report_before_any_ticket_is_empty(tickets: Report) -> None:
    report = tickets(when(10))

    assert report.backlog.total == 0 and sum(report.backlog.per_status.values()) == 0
    assert (report.first_response.count, report.first_response.median_hours) == (0, None)
    assert report.csat.overall == Satisfaction(0, None, None) and report.sla.breaching == []
    assert [s.conversion for s in report.funnel.steps()] == [None] * 5
    assert [s.conversion_note for s in report.funnel.steps()] == [
        "the first step", "no tickets", "no resolved tickets", "no rated tickets", "no satisfied customers"]


def test_json_report_names_breaching_tickets_and_funnel_steps(crm: CrmApplication, history: dict[str, UUID]) -> None:
    data = TicketQueries(_built(crm), crm.keys.unseal_all_marks).summary(when(130))

    assert data["as_of"] == "2026-03-06T19:00:00+00:00"
    assert data["sla"]["breaching"][0]["ticket_id"] == str(history["k4"])
    assert data["sla"]["breaching"][0]["opened_at"] == "2026-03-05T09:00:00+00:00"
    assert data["funnel"]["steps"][-1] == {"step": "loyal", "count": 1, "unit": "customers", "conversion": 0.5,
                                           "not_yet": 1, "conversion_note": None}


@pytest.mark.parametrize("hours", [0, 24, 24.5, 30, 36, 52, 60, 80, 81, 90, 100, 120, 130])
def test_small_batches_give_the_same_answers_as_a_replay(crm: CrmApplication, history: dict[str, UUID],
                                                         hours: float) -> None:
    incremental = TicketQueries(_built(crm, limit=3), crm.keys.unseal_all_marks)

    assert incremental.summary(when(hours)) == TicketQueries(
        replay_until(crm, [TicketsReadModel()], when(hours)), crm.keys.unseal_all_marks).summary(when(hours))
