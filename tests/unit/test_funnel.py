"""Funnel as of an instant, from stage intervals folded out of the log."""

from datetime import timedelta

import pytest

from services.application import CrmApplication
from services.funnel_replay import replay_funnels, replay_stage_intervals
from tests.conftest import T0, at


@pytest.fixture
def history(crm: CrmApplication) -> dict[str, object]:
    """Three deals: A is won, B is lost in proposal then reopened, C skips straight to proposal."""
    customer = crm.register_customer("张三", "某公司", "华东", "制造业", "web", at(0))
    a = crm.open_deal("sales", customer, "A", "100", "CNY", "李娜", at(0))
    b = crm.open_deal("sales", customer, "B", "200", "CNY", "李娜", at(1))
    c = crm.open_deal("sales", customer, "C", "300", "CNY", "王伟", at(2))
    for day, stage in enumerate(["first_contact", "needs_analysis", "proposal", "negotiation", "contract_signed"], 1):
        crm.change_stage(a, stage, "", at(day * 2))  # A enters a new stage every 2 days
    crm.win_deal(a, at(12))
    crm.change_stage(b, "first_contact", "", at(3))
    crm.change_stage(b, "proposal", "跳过需求分析", at(4))
    crm.lose_deal(b, "预算取消", at(5))
    crm.reopen_deal(b, "重新启动", at(20))
    crm.change_stage(c, "proposal", "", at(6))
    return {"a": a, "b": b, "c": c}


def _row(report: object, stage: str) -> object:
    return next(r for r in report.rows if r.stage == stage)


def test_deals_per_stage_as_of_an_instant(crm: CrmApplication, history: dict[str, object]) -> None:
    (report,) = replay_funnels(crm, "sales", [T0 + timedelta(days=4, hours=12)])

    in_stage = {r.stage: r.in_stage for r in report.rows}
    assert in_stage == {"lead": 1, "first_contact": 0, "needs_analysis": 1, "proposal": 1, "negotiation": 0,
                        "contract_signed": 0}  # C still in lead, A in needs analysis, B in proposal
    assert (report.won, report.lost) == (0, 0)


def test_won_lost_and_reopened_deals_as_of_different_instants(crm: CrmApplication,
                                                              history: dict[str, object]) -> None:
    before_reopen, after_reopen = replay_funnels(crm, "sales", [at(15).occurred_at, at(25).occurred_at])

    assert (before_reopen.won, before_reopen.lost, before_reopen.win_rate) == (1, 1, 0.5)
    assert (after_reopen.won, after_reopen.lost) == (1, 0)
    assert _row(after_reopen, "proposal").in_stage == 2  # B reopened in proposal, C still there


def test_reached_counts_the_furthest_stage_and_conversion_follows_it(crm: CrmApplication,
                                                                   history: dict[str, object]) -> None:
    (report,) = replay_funnels(crm, "sales", [at(30).occurred_at])

    assert [r.reached for r in report.rows] == [3, 3, 3, 3, 1, 1]  # B and C skipped needs analysis
    assert _row(report, "proposal").conversion_to_next == pytest.approx(1 / 3)
    assert _row(report, "contract_signed").conversion_to_next == 1.0  # the one there was won


def test_median_days_counts_only_stays_that_had_ended(crm: CrmApplication, history: dict[str, object]) -> None:
    early, late = replay_funnels(crm, "sales", [at(5.5).occurred_at, at(30).occurred_at])

    assert _row(early, "lead").median_days == pytest.approx(2.0)  # A: 0→2, B: 1→3 ended; C's stay had not
    assert _row(late, "lead").median_days == pytest.approx(2.0)  # A 2, B 2, C 4
    assert _row(early, "negotiation").median_days is None


def test_the_funnel_before_any_deal_is_empty(crm: CrmApplication, history: dict[str, object]) -> None:
    (report,) = replay_funnels(crm, "sales", [at(-1).occurred_at])

    assert report.open_deals == 0 and [r.reached for r in report.rows] == [0] * 6
    assert report.win_rate is None


def test_intervals_of_a_deal_tile_its_life_without_gaps(crm: CrmApplication, history: dict[str, object]) -> None:
    intervals = [i for i in replay_stage_intervals(crm).intervals if i.deal_id == history["b"]]

    assert [i.stage for i in intervals] == ["lead", "first_contact", "proposal", "lost", "proposal"]
    assert all(a.left_at == b.entered_at for a, b in zip(intervals, intervals[1:]))
    assert intervals[-1].left_at is None
