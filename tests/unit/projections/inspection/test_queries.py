"""Pipeline inspection and win/loss as of T, in the business's zone (Asia/Shanghai): a window (A, B] of local
days, close dates classified by the periods of the zone's calendar, items shown by title and customer."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from domain.base import Meta
from projections.inspection import InspectionQueries, Where
from projections.rates import RateQueries
from services.application import CrmApplication
from services.commands import (ChangeAmount, ChangeDealProperties, ChangeStage, ForgetCustomer, LogTouch, LoseDeal,
                               OpenDeal, RecordExchangeRate, RegisterCustomer, ReopenDeal, WinDeal)
from services.commands.forecasts import AssignTeam, ChangeExpectedClose
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

SHANGHAI, UTC = ZoneInfo("Asia/Shanghai"), ZoneInfo("UTC")
START = datetime(2026, 1, 5, tzinfo=timezone.utc)


def at(days: float, actor: str = "李娜") -> Meta:
    return Meta(occurred_at=START + timedelta(days=days), actor=actor)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.fixture
def history() -> tuple[CrmApplication, InspectionQueries, dict[str, object]]:
    db = database_from_url("memory://")
    crm = CrmApplication(db)
    crm.ensure_default_pipelines(at(-30, "setup"))
    east = crm.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", company="甲公司"), at(0))
    south = crm.register_customer(RegisterCustomer("李四", "华南", "零售", "web", company="乙公司"), at(0))
    first = crm.open_deal(OpenDeal(east, "一期", "100000", owner="李娜", expected_close=date(2026, 3, 31)), at(1))
    second = crm.open_deal(OpenDeal(south, "二期", "50000", owner="王伟", expected_close=date(2026, 3, 20)), at(1))
    third = crm.open_deal(OpenDeal(south, "三期", "1000", currency="USD", owner="王伟"), at(2))
    crm.change_deal_properties(ChangeDealProperties(first, {"product": "GTX"}), at(3))
    crm.assign_team(AssignTeam("王伟", "华南组"), at(3))
    crm.record_exchange_rate(RecordExchangeRate("USD", "7", date(2026, 1, 1)), at(0))
    # 1 April 01:00 in Shanghai is 31 March 17:00 UTC: a slip into Q2 seen in Shanghai's week from 1 April
    crm.change_expected_close(ChangeExpectedClose(first, date(2026, 4, 1), "客户预算推迟"),
                              Meta(occurred_at=local("2026-04-01T01:00"), actor="王伟"))
    crm.change_expected_close(ChangeExpectedClose(second, date(2026, 2, 15), "提前签约"),
                              Meta(occurred_at=local("2026-04-02T10:00"), actor="王伟"))
    crm.change_expected_close(ChangeExpectedClose(third, date(2026, 5, 1), "首次预估"),
                              Meta(occurred_at=local("2026-04-03T10:00"), actor="王伟"))
    crm.change_amount(ChangeAmount(second, "40000"), Meta(occurred_at=local("2026-04-02T11:00"), actor="王伟"))
    crm.change_amount(ChangeAmount(second, "45000"), Meta(occurred_at=local("2026-04-02T12:00"), actor="李娜"))
    crm.change_stage(ChangeStage(second, "proposal", "报价"), Meta(occurred_at=local("2026-04-03T09:00"), actor="王伟"))
    crm.lose_deal(LoseDeal(second, "价格", "竞品甲"), Meta(occurred_at=local("2026-04-04T09:00"), actor="王伟"))
    crm.win_deal(WinDeal(first), Meta(occurred_at=local("2026-04-05T09:00"), actor="李娜"))
    crm.log_touch(LogTouch(south, "phone", "inbound", "回访"), Meta(occurred_at=local("2026-04-06T09:00")))
    store = ReadModelStore(db)
    projector_for(crm, store).catch_up()
    return crm, InspectionQueries(store, crm.keys.unseal_all_marks), {
        "first": str(first), "second": str(second), "third": str(third), "south": south, "store": store}


def test_a_slip_at_the_quarters_edge_is_seen_in_the_zones_window(history) -> None:
    _, queries, ids = history
    week = queries.slippage(local("2026-04-01T00:00"), local("2026-04-08T00:00"), "quarter", SHANGHAI)
    slipped = {d["deal_id"]: d for d in week["deals"]}
    first = slipped[ids["first"]]
    assert (first["deal"], first["customer"], first["old_close"], first["new_close"]) == \
        ("一期", "甲公司", "2026-03-31", "2026-04-01")
    assert (first["old_period"], first["new_period"], first["direction"], first["periods_moved"]) == \
        ("2026-Q1", "2026-Q2", "pushed", 1)
    assert first["changes"] == [{"at": "2026-04-01T01:00:00+08:00", "old_close": "2026-03-31",
                                 "new_close": "2026-04-01", "actor": "王伟", "reason": "客户预算推迟"}]
    assert slipped[ids["second"]]["direction"] == "within"  # 20 March → 15 February: both Q1
    assert slipped[ids["third"]]["direction"] == "set"
    assert week["counts"] == {"pushed": 1, "pulled_in": 0, "set": 1, "within": 1}
    assert [d["direction"] for d in week["deals"]] == ["pushed", "set", "within"]
    assert week["from"] == "2026-04-01T00:00:00+08:00" and week["time_zone"] == "Asia/Shanghai"
    by_month = queries.slippage(local("2026-04-01T00:00"), local("2026-04-08T00:00"), "month", SHANGHAI)
    assert {d["deal_id"]: d["direction"] for d in by_month["deals"]}[ids["second"]] == "pulled_in"
    # the same window's days in UTC begin 8 hours later: the slip at 17:00 UTC on 31 March is before it
    utc = queries.slippage(datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 8, tzinfo=UTC), "quarter", UTC)
    assert ids["first"] not in {d["deal_id"] for d in utc["deals"]}


def test_the_window_is_open_at_its_start_and_closed_at_its_end(history) -> None:
    _, queries, ids = history
    slip = local("2026-04-01T01:00")
    assert ids["first"] in {d["deal_id"] for d in queries.slippage(slip - timedelta(seconds=1), slip)["deals"]}
    assert ids["first"] not in {d["deal_id"] for d in queries.slippage(slip, slip + timedelta(days=1))["deals"]}


def test_amount_and_stage_changes_net_over_the_window(history) -> None:
    _, queries, ids = history
    changes = queries.changes(local("2026-04-01T00:00"), local("2026-04-08T00:00"), SHANGHAI)
    (amount,) = changes["amounts"]
    assert (amount["deal"], amount["customer"], amount["old_amount_cents"], amount["new_amount_cents"],
            amount["delta_cents"]) == ("二期", "乙公司", 5_000_000, 4_500_000, -500_000)
    assert [c["actor"] for c in amount["changes"]] == ["王伟", "李娜"]
    stages = {s["deal_id"]: s for s in changes["stages"]}
    assert (stages[ids["second"]]["from_stage"], stages[ids["second"]]["to_stage"]) == ("lead", "lost")
    assert [(m["from_stage"], m["to_stage"], m["reason"]) for m in stages[ids["second"]]["moves"]] == \
        [("lead", "proposal", "报价"), ("proposal", "lost", "价格")]
    assert stages[ids["first"]]["to_stage"] == "won"


def test_filters_by_owner_team_and_pipeline_as_of_the_end(history) -> None:
    _, queries, ids = history
    window = (local("2026-04-01T00:00"), local("2026-04-08T00:00"), "quarter", SHANGHAI)
    assert {d["deal_id"] for d in queries.slippage(*window, Where(owner="李娜"))["deals"]} == {ids["first"]}
    assert {d["deal_id"] for d in queries.slippage(*window, Where(team="华南组"))["deals"]} == \
        {ids["second"], ids["third"]}
    assert queries.slippage(*window, Where(pipeline="service"))["deals"] == []


def test_inactive_deals_count_a_customers_touches(history) -> None:
    _, queries, ids = history
    quiet = queries.inactive(local("2026-04-10T09:00"), 7, SHANGHAI)
    assert quiet["deals"] == []  # the third was changed on 3 April, its customer touched on 6 April
    later = queries.inactive(local("2026-04-20T09:00"), 7, SHANGHAI)
    (third,) = later["deals"]
    assert (third["deal"], third["customer"], third["last_activity"], third["last_activity_at"],
            third["days_inactive"]) == ("三期", "乙公司", "touch", "2026-04-06T09:00:00+08:00", 14)
    assert queries.inactive(local("2026-04-20T09:00"), 15, SHANGHAI)["deals"] == []
    with pytest.raises(ValueError):
        queries.inactive(local("2026-04-20T09:00"), -1, SHANGHAI)


def test_winloss_as_of_t_by_stage_competitor_product_and_period(history) -> None:
    crm, queries, ids = history
    t = local("2026-04-30T00:00")
    money = RateQueries(ids["store"]).conversion(crm.reporting_currency, t)  # type: ignore[arg-type]
    answer = queries.winloss(t, "stage", "quarter", SHANGHAI, money=money)
    totals = answer["totals"]
    assert (totals["won"], totals["won_cents"], totals["lost"], totals["lost_cents"], totals["win_rate_percent"]) \
        == (1, 10_000_000, 1, 4_500_000, "50.0")
    assert totals["reasons"] == [{"reason": "价格", "deals": 1, "cents": 4_500_000}]
    assert totals["competitors"] == [{"competitor": "竞品甲", "deals": 1, "cents": 4_500_000}]
    assert [(g["group"], g["won"], g["lost"]) for g in answer["groups"]] == [("lead", 1, 0), ("proposal", 0, 1)]
    products = queries.winloss(t, "product", zone=SHANGHAI, money=money)["groups"]
    assert [(g["group"], g["won"], g["lost"]) for g in products] == [("", 0, 1), ("GTX", 1, 0)]
    periods = queries.winloss(t, "period", "month", SHANGHAI, money=money)
    assert [g["group"] for g in periods["groups"]] == ["2026-04"]
    assert queries.winloss(local("2026-04-04T12:00"), zone=SHANGHAI)["totals"]["won"] == 0  # as of then
    assert queries.winloss(t, zone=SHANGHAI, period="2026-Q1")["deals"] == []


def test_a_reopened_deal_is_no_longer_decided_and_a_forgotten_customer_reads_forgotten(history) -> None:
    crm, _, ids = history
    from uuid import UUID
    crm.reopen_deal(ReopenDeal(UUID(ids["second"]), "客户回来了"), Meta(occurred_at=local("2026-05-01T09:00")))
    crm.forget_customer(ForgetCustomer(ids["south"]), Meta(occurred_at=local("2026-05-02T09:00")))  # type: ignore[arg-type]
    store = ids["store"]
    projector_for(crm, store).catch_up()  # type: ignore[arg-type]
    queries = InspectionQueries(store, crm.keys.unseal_all_marks)  # type: ignore[arg-type]
    assert queries.winloss(local("2026-05-03T00:00"), zone=SHANGHAI)["totals"]["lost"] == 0
    reopened = queries.changes(local("2026-04-30T00:00"), local("2026-05-03T00:00"), SHANGHAI)["stages"]
    assert [(s["customer"], s["from_stage"], s["to_stage"]) for s in reopened] == [("(forgotten)", "lost", "proposal")]


def test_a_window_must_run_forwards(history) -> None:
    _, queries, _ = history
    with pytest.raises(ValueError, match="must come before"):
        queries.slippage(local("2026-04-08T00:00"), local("2026-04-08T00:00"))
    with pytest.raises(ValueError):
        queries.winloss(local("2026-04-08T00:00"), by="colour")
