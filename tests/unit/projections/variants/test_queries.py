"""Each variant's funnel as of T — exposures, responses, leads, qualified, customers, won and revenue — and the
significance of each comparison, as statsmodels and scipy compute it on the same counts."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from scipy.stats import chi2_contingency
from statsmodels.stats.proportion import proportions_ztest

from domain.base import Meta
from domain.experiments import NOT_ENOUGH_DATA
from projections.rates import RateQueries
from projections.variants import VariantQueries
from services.application import CrmApplication
from services.commands import (AssignLead, CaptureLead, ContactLead, ConvertLead, LaunchCampaign, PlanCampaign,
                               QualifyLead, RecordExchangeRate, RecordResponse, RegisterCustomer, ReopenDeal,
                               WinDeal, LoseDeal)
from services.commands.ab_tests import DeclareWinner, DefineVariants, RecordExposures, StopVariant
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

START = datetime(2026, 3, 2, tzinfo=timezone.utc)
AB = [{"key": "A", "name": "原文案", "copy": "春季八折", "weight": 1},
      {"key": "B", "name": "新文案", "copy": "买一送一", "channel": "wechat", "weight": 3}]


def at(days: float, actor: str = "李娜") -> Meta:
    return Meta(occurred_at=START + timedelta(days=days), actor=actor)


def _won_lead(crm: CrmApplication, campaign, variant: str, amount: str, currency: str, day: float) -> str:
    lead = crm.capture_lead(CaptureLead("王芳", campaign_id=campaign, variant=variant), at(day))
    crm.assign_lead(AssignLead(lead, "李娜"), at(day + 0.1))
    crm.contact_lead(ContactLead(lead, "phone", "首次沟通"), at(day + 0.2))
    crm.qualify_lead(QualifyLead(lead, "预算明确"), at(day + 0.3))
    _, deal = crm.convert_lead(ConvertLead(lead, "采购", amount, currency), at(day + 0.4))
    return deal


def _launched() -> tuple[Any, CrmApplication, Any]:
    """A log with the A/B campaign launched: (database, app, campaign)."""
    db = database_from_url("memory://")
    crm = CrmApplication(db)
    crm.ensure_default_pipelines(at(-30, "setup"))
    campaign = crm.plan_campaign(PlanCampaign("春季推广", "event", "1000"), at(0))
    crm.define_variants(DefineVariants(campaign, AB, "首轮"), at(0.1))
    crm.launch_campaign(LaunchCampaign(campaign), at(0.2))
    return db, crm, campaign


@pytest.fixture
def history() -> tuple[CrmApplication, ReadModelStore, object]:
    db, crm, campaign = _launched()
    crm.record_exposures(RecordExposures(campaign, "A", 1000), at(1))
    crm.record_exposures(RecordExposures(campaign, "B", 1000), at(1))
    crm.record_exposures(RecordExposures(campaign, "B", 200), at(7))  # after the first instant asked
    for i in range(60):  # 20 respond to A, 40 to B (one customer twice: counted once)
        customer = crm.register_customer(RegisterCustomer(f"客户{i}"), at(2))
        crm.record_response(RecordResponse(campaign, "click", customer, variant="A" if i < 20 else "B"), at(2 + i / 100))
        if i == 30:
            crm.record_response(RecordResponse(campaign, "reply", customer, variant="B"), at(3))
    crm.record_response(RecordResponse(campaign, "click", crm.register_customer(RegisterCustomer("无变体"), at(2))),
                        at(2.5))  # no variant: not in any funnel
    won_a = _won_lead(crm, campaign, "A", "8000", "CNY", 4)
    crm.win_deal(WinDeal(won_a), at(5))
    won_b = _won_lead(crm, campaign, "B", "1000", "USD", 4)
    crm.win_deal(WinDeal(won_b), at(5))
    lost_b = _won_lead(crm, campaign, "B", "500", "CNY", 4)
    crm.lose_deal(LoseDeal(lost_b, "价格"), at(5))
    crm.reopen_deal(ReopenDeal(lost_b, "重启"), at(12))
    crm.win_deal(WinDeal(lost_b), at(13))
    crm.capture_lead(CaptureLead("刘洋", campaign_id=campaign, variant="B"), at(4))  # still new
    crm.record_exchange_rate(RecordExchangeRate("USD", "7", date(2026, 3, 1)), at(0))
    crm.stop_variant(StopVariant(campaign, "A", "效果差"), at(8, "王经理"))
    crm.declare_winner(DeclareWinner(campaign, "B", "回复率更高"), at(9, "王经理"))
    store = ReadModelStore(db)
    projector_for(crm, store).catch_up()
    return crm, store, campaign


def report(history, days: float, **asked):
    crm, store, campaign = history
    as_of = START + timedelta(days=days)
    return VariantQueries(store).report(str(campaign), as_of, money=RateQueries(store).conversion("CNY", as_of),
                                        **asked)


def _counts(report, key: str) -> dict[str, int]:
    (funnel,) = [f for f in report.variants if f.key == key]
    return funnel.counts


def test_each_variants_funnel_as_of_an_instant(history) -> None:
    early = report(history, 6)
    assert _counts(early, "A") == {"exposures": 1000, "responses": 20, "leads": 1, "qualified": 1, "customers": 1,
                                   "won": 1}
    assert _counts(early, "B") == {"exposures": 1000, "responses": 40, "leads": 3, "qualified": 2, "customers": 2,
                                   "won": 1}
    a, b = early.variants
    assert (a.definition["name"], a.share, b.share, b.definition["channel"]) == ("原文案", 0.25, 0.75, "wechat")
    assert (a.revenue_cents, b.revenue_cents, b.revenue_by_currency) == (800000, 700000, {"USD": 100000})
    assert (a.rate, b.rate) == (0.02, 0.04)
    assert early.winner is None and a.stopped is None
    later = report(history, 14)
    assert _counts(later, "B")["exposures"] == 1200 and _counts(later, "B")["won"] == 2  # the reopened deal won
    assert later.variants[1].revenue_cents == 750000
    assert later.variants[0].stopped.reason == "效果差" and later.variants[0].stopped.actor == "王经理"
    assert later.winner.variant == "B" and later.winner.reason == "回复率更高"


def test_before_the_definition_there_is_no_test(history) -> None:
    before = report(history, 0.05)
    assert (before.variants, before.comparisons, before.baseline) == ([], [], None)


def test_the_comparison_matches_statsmodels_and_scipy(history) -> None:
    answer = report(history, 6)
    (comparison,) = answer.comparisons
    z_p = proportions_ztest([40, 20], [1000, 1000])[1]
    assert comparison["control"] == "A" and comparison["variant"] == "B"
    assert comparison["p_value"] == pytest.approx(z_p, rel=1e-12)
    assert answer.chi_square_p == pytest.approx(chi2_contingency([[20, 980], [40, 960]], correction=False).pvalue,
                                                rel=1e-12)
    assert comparison["difference"] == pytest.approx(0.02)
    assert 0.99 < comparison["probability_to_beat"] < 1  # 40 vs 20 of 1000 each
    # p ≈ 0.0088 < 0.05, yet 1,110 exposures per arm are needed to detect a 2-point lift with 80 % power: no
    # false winner is named from a test stopped early.
    assert (comparison["verdict"], comparison["needed_per_arm"]) == (NOT_ENOUGH_DATA, 1110)
    assert comparison["reason"] == "110 more exposures per variant are needed (1,110 each)"


def test_a_chosen_baseline_and_step(history) -> None:
    answer = report(history, 6, step="leads", baseline="B")
    (comparison,) = answer.comparisons
    assert (answer.baseline, comparison["control"], comparison["variant"]) == ("B", "B", "A")
    assert comparison["verdict"] == NOT_ENOUGH_DATA  # 1 and 3 leads of 1000: far too few
    assert answer.variants[0].rate == 0.001


def test_a_step_with_more_conversions_than_exposures_is_not_enough_data(history) -> None:
    crm, store, campaign = history
    other = crm.plan_campaign(PlanCampaign("无曝光", "event", "1"), at(0))
    crm.define_variants(DefineVariants(other, AB), at(0.1))
    crm.launch_campaign(LaunchCampaign(other), at(0.2))
    crm.record_response(RecordResponse(other, "click", crm.register_customer(RegisterCustomer("甲"), at(1)),
                                       variant="B"), at(1))
    projector_for(crm, store).catch_up()
    answer = VariantQueries(store).report(str(other), START + timedelta(days=2))
    assert answer.comparisons[0]["verdict"] == NOT_ENOUGH_DATA
    assert "more responses than exposures" in answer.comparisons[0]["reason"]
    assert answer.chi_square_p is None and answer.variants[1].rate is None


@pytest.mark.parametrize(("asked", "message"), [({"step": "exposures"}, "at one of the steps"),
                                                 ({"step": "clicks"}, "at one of the steps"),
                                                 ({"baseline": "Z"}, "defines no variant 'Z'")])
def test_bad_questions_are_refused_with_a_sentence(history, asked, message) -> None:
    with pytest.raises(ValueError, match=message):
        report(history, 6, **asked)


def test_a_lead_and_the_customer_it_became_are_one_respondent_from_the_conversion_on() -> None:
    """A lead responds to B, is converted, and its customer responds to B again: still one respondent (review: two
    were counted, which inflated B's rate and could exceed its exposures)."""
    db, crm, campaign = _launched()
    crm.record_exposures(RecordExposures(campaign, "B", 10), at(1))
    lead = crm.capture_lead(CaptureLead("王芳", campaign_id=campaign, variant="B"), at(1))
    crm.record_response(RecordResponse(campaign, "click", None, lead, "B"), at(1.5))
    crm.assign_lead(AssignLead(lead, "李娜"), at(2))
    crm.contact_lead(ContactLead(lead, "phone", "首次沟通"), at(2.1))
    crm.qualify_lead(QualifyLead(lead, "预算明确"), at(2.2))
    customer, _ = crm.convert_lead(ConvertLead(lead, "ERP", "1000"), at(3))
    crm.record_response(RecordResponse(campaign, "reply", customer, variant="B"), at(4))
    store = ReadModelStore(db)
    projector_for(crm, store).catch_up()

    def responses(days: float) -> int:
        answer = VariantQueries(store).report(str(campaign), START + timedelta(days=days))
        return _counts(answer, "B")["responses"]

    assert (responses(2), responses(5)) == (1, 1)
