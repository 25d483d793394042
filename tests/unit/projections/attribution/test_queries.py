"""The attribution read model as of T: a known journey credited by hand under every model, touches after the
win and deals without a touch, money without a rate, and CAC/CLV per channel and cohort in a business zone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from domain.base import Meta
from projections.attribution import AttributionQueries
from projections.rates import RateQueries
from services.application import CrmApplication
from services.commands import (AssignLead, CaptureLead, ChangeAmount, ContactLead, ConvertLead, LaunchCampaign, OpenDeal, PlanCampaign,
                               QualifyLead, RecordCost, RecordResponse, RegisterCustomer, WinDeal)
from services.commands.ab_tests import DefineVariants
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

START = datetime(2026, 1, 5, tzinfo=timezone.utc)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(days: float) -> Meta:
    return Meta(occurred_at=START + timedelta(days=days), actor="李娜")


@pytest.fixture(scope="module")
def history() -> tuple[CrmApplication, ReadModelStore, dict[str, str]]:
    """Customer 甲 came through a lead of 展会's variant A (day 0), answered 邮件's B (day 2) as a lead, was
    converted (day 4: registered through 展会, no variant; deal opened), answered 广告 (day 6) and won 10 000 on
    day 10 — touches 展会/A@0, 邮件/B@2, 展会@4, 广告@6 — then answered 邮件 again (day 12, after the win). 乙
    registered on day 35 through web, answered 邮件's A and won 2 000 (day 37); 丙 won 1 000 with no touch (day
    38); 丁 won 300 USD (no rate)."""
    db = database_from_url("memory://")
    crm = CrmApplication(db)
    crm.ensure_default_pipelines(at(-30))
    ids = {name: crm.plan_campaign(PlanCampaign(name, channel, "10000"), at(-10))
           for name, channel in (("展会", "event"), ("邮件", "email"), ("广告", "search_ads"))}
    for campaign in ids.values():
        crm.launch_campaign(LaunchCampaign(campaign), at(-9))
    for name in ("展会", "邮件"):
        crm.handle(DefineVariants(ids[name], [{"key": "A", "weight": 1}, {"key": "B", "copy": "限时优惠", "weight": 1}]),
                   at(-9))
    crm.record_cost(RecordCost(ids["展会"], "3000"), at(1))
    crm.record_cost(RecordCost(ids["邮件"], "1000"), at(1))
    crm.record_cost(RecordCost(ids["广告"], "2000"), at(40))
    lead = crm.capture_lead(CaptureLead("甲", channel="event", campaign_id=ids["展会"], variant="A"), at(0))
    crm.record_response(RecordResponse(ids["邮件"], "click", lead_id=lead, variant="B"), at(2))
    crm.assign_lead(AssignLead(lead, "李娜", "round_robin"), at(3))
    crm.contact_lead(ContactLead(lead, "phone", "联系"), at(3))
    crm.qualify_lead(QualifyLead(lead, "合格"), at(3))
    first, deal = crm.convert_lead(ConvertLead(lead, "一期", "500"), at(4))
    crm.record_response(RecordResponse(ids["广告"], "click", customer_id=first), at(6))
    crm.change_amount(ChangeAmount(deal, "10000"), at(8))
    crm.win_deal(WinDeal(deal), at(10))
    crm.record_response(RecordResponse(ids["邮件"], "reply", customer_id=first), at(12))
    second = crm.register_customer(RegisterCustomer("乙", channel="web"), at(35))
    crm.record_response(RecordResponse(ids["邮件"], "click", customer_id=second, variant="A"), at(36))
    crm.win_deal(WinDeal(crm.open_deal(OpenDeal(second, "二期", "2000", owner="李娜"), at(36))), at(37))
    third = crm.register_customer(RegisterCustomer("丙", channel="web"), at(36))
    crm.win_deal(WinDeal(crm.open_deal(OpenDeal(third, "三期", "1000", owner="李娜"), at(37))), at(38))
    late = crm.register_customer(RegisterCustomer("丁", channel="web"),
                                 Meta(occurred_at=datetime(2026, 1, 31, 20, tzinfo=timezone.utc), actor="李娜"))
    crm.win_deal(WinDeal(crm.open_deal(OpenDeal(late, "四期", "300", currency="USD", owner="李娜"), at(38))), at(39))
    store = ReadModelStore(db)
    projector_for(crm, store, ["attribution", "rates"]).catch_up()
    return crm, store, {name: str(campaign) for name, campaign in ids.items()}


def credited(history: tuple, days: float, model: str, by: str = "campaign", **asked: object) -> dict:
    crm, store, ids = history
    names = {campaign: name for name, campaign in ids.items()}
    report = AttributionQueries(store).credits(START + timedelta(days=days), model, by, **asked)  # type: ignore[arg-type]
    key = {"campaign": lambda row: names.get(row["campaign_id"]), "channel": lambda row: row["channel"],
           "variant": lambda row: (names.get(row["campaign_id"]), row["variant"])}[by]
    return {key(row): row["credited_cents"] for row in report["rows"]}


@pytest.mark.parametrize(("model", "expected"), [
    ("first_touch", {"展会": 1_000_000}),
    ("last_touch", {"广告": 1_000_000}),
    ("linear", {"展会": 500_000, "邮件": 250_000, "广告": 250_000}),
    ("u_shaped", {"展会": 400_000 + 100_000, "邮件": 100_000, "广告": 400_000}),  # 40 / 10 / 10 / 40
    # milestones: the lead's capture (day 0: 展会@0, also the first) and the deal's opening (day 4: 展会@4),
    # so two distinct key touches at 45 % each, 5 % each to 邮件@2 and 广告@6
    ("w_shaped", {"展会": 900_000, "邮件": 50_000, "广告": 50_000}),
])
def test_the_known_journey_under_each_model(history: tuple, model: str, expected: dict) -> None:
    assert credited(history, 11, model) == expected
    assert credited(history, 30, model) == expected  # 邮件's reply on day 12 came after the win


def test_time_decay_halves_a_touch_every_half_life_before_the_win(history: tuple) -> None:
    for half_life in (7.0, 2.0):  # touches 10, 8, 6 and 4 days before the win
        weights = {"展会": 2 ** (-10 / half_life) + 2 ** (-6 / half_life), "邮件": 2 ** (-8 / half_life),
                   "广告": 2 ** (-4 / half_life)}
        found = credited(history, 11, "time_decay", half_life_days=half_life)
        assert sum(found.values()) == 1_000_000
        for name, weight in weights.items():
            assert found[name] == pytest.approx(1_000_000 * weight / sum(weights.values()), abs=1)
    assert credited(history, 11, "time_decay", half_life_days=2.0)["广告"] > credited(history, 11, "time_decay")["广告"]


def test_by_channel_and_variant_sum_the_campaigns(history: tuple) -> None:
    assert credited(history, 11, "linear", "channel") == {"event": 500_000, "email": 250_000, "search_ads": 250_000}
    assert credited(history, 11, "linear", "variant") == {("展会", "A"): 250_000, ("展会", ""): 250_000,
                                                          ("邮件", "B"): 250_000, ("广告", ""): 250_000}
    assert credited(history, 60, "first_touch", "variant") == {("展会", "A"): 1_000_000, ("邮件", "A"): 200_000,
                                                               (None, ""): 100_000}


def test_nothing_before_the_win_and_no_touch_credits_no_campaign(history: tuple) -> None:
    crm, store, _ = history
    assert AttributionQueries(store).credits(START + timedelta(days=9), "linear")["rows"] == []
    later = AttributionQueries(store).credits(START + timedelta(days=60), "last_touch")
    assert (later["won_deals"], later["won_revenue_cents"]) == (3, 1_300_000)
    assert later["unconverted"] == {"USD": 30_000}  # 丁's deal: no USD rate, credited nowhere
    assert credited(history, 60, "last_touch") == {"广告": 1_000_000, "邮件": 200_000, None: 100_000}
    assert credited(history, 60, "w_shaped", "channel") == {"event": 900_000, "email": 250_000, "search_ads": 50_000,
                                                            None: 100_000}


@pytest.mark.parametrize(("bad", "message"), [({"model": "position"}, "must be one of"),
                                              ({"by": "region"}, "attribution is by"),
                                              ({"half_life_days": 0}, "positive"),
                                              ({"half_life_days": float("nan")}, "positive")])
def test_bad_questions_are_refused_with_a_sentence(history: tuple, bad: dict, message: str) -> None:
    asked = {"model": "linear", "by": "campaign", "half_life_days": 7.0, **bad}
    with pytest.raises(ValueError, match=message):
        AttributionQueries(history[1]).credits(START, asked["model"], asked["by"], asked["half_life_days"])


def cohorts(history: tuple, zone: ZoneInfo, grain: str = "month") -> dict:
    crm, store, _ = history
    as_of = START + timedelta(days=60)
    report = AttributionQueries(store).cohorts(as_of, grain, zone, RateQueries(store).conversion("CNY", as_of))
    return {(row["channel"], row["period"]): {k: row[k] for k in ("customers", "buyers", "cost_cents", "cac_cents",
                                                                   "won_cents", "clv_cents")}
            for row in report["cohorts"]}


def test_cac_and_clv_per_channel_and_registration_month(history: tuple) -> None:
    assert cohorts(history, ZoneInfo("UTC")) == {
        ("email", "2026-01"): dict(customers=0, buyers=0, cost_cents=100_000, cac_cents=None, won_cents=0, clv_cents=None),
        ("event", "2026-01"): dict(customers=1, buyers=1, cost_cents=300_000, cac_cents=300_000, won_cents=1_000_000,
                                   clv_cents=1_000_000),
        ("search_ads", "2026-02"): dict(customers=0, buyers=0, cost_cents=200_000, cac_cents=None, won_cents=0,
                                        clv_cents=None),
        # 丁 registered 2026-01-31 20:00 UTC; their USD win has no rate: a customer, no buyer
        ("web", "2026-01"): dict(customers=1, buyers=0, cost_cents=0, cac_cents=0, won_cents=0, clv_cents=0),
        ("web", "2026-02"): dict(customers=2, buyers=2, cost_cents=0, cac_cents=0, won_cents=300_000, clv_cents=150_000),
    }


def test_a_cohort_is_the_business_zone_s_month_or_quarter(history: tuple) -> None:
    shanghai = cohorts(history, SHANGHAI)
    assert shanghai[("web", "2026-02")]["customers"] == 3  # 2026-02-01 04:00 in Shanghai
    assert ("web", "2026-01") not in shanghai
    assert cohorts(history, SHANGHAI, "quarter")[("web", "2026-Q1")]["customers"] == 3
    with pytest.raises(ValueError, match="month or quarter"):
        cohorts(history, SHANGHAI, "week")
