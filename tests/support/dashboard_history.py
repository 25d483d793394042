"""A small known history beside the demo's, for the dashboard's end-to-end test: one owner (赵敏) whose forecast,
target and reminders are known to the cent, whatever day the test runs.

Relative to the quarter holding "now" in the test's zone: a deal won in the previous quarter against a target,
two deals expected in this one (commit and best case) against another target, one pushed from this quarter into
the next 3 days ago (slippage) and one lost to a competitor (win/loss); the best-case deal has stayed in
negotiation past its stage's 14-day threshold and a ticket of the same customer is past its service levels, so
that the reminder process (run once, as `crm reminders run` would) leaves open reminders of both kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from uuid import UUID

from domain.base import Meta
from domain.periods import Period, period_of
from services.application import CrmApplication
from services.commands import (AssignTicket, ChangeStage, LoseDeal, OpenDeal, OpenTicket, RegisterCustomer,
                               SetStageReminders, WinDeal)
from services.commands.ab_tests import DefineVariants, RecordExposures
from services.commands.campaigns import LaunchCampaign, PlanCampaign, RecordResponse
from services.commands.forecasts import ChangeExpectedClose, SetTarget

OWNER = "赵敏"  # not one of the demo's owners: her rows hold only what is below
CUSTOMER = "苏州知行科技"
WON_TITLE, COMMIT_TITLE, BEST_CASE_TITLE = "年度订阅 / Annual subscription", "二期扩容", "试点项目 / Pilot"
SLIPPED_TITLE, LOST_TITLE = "三期 / Phase 3", "竞品替换 / Replacement"
TICKET_SUBJECT = "发票无法下载"
LOSS_REASON, COMPETITOR = "价格 / price", "竞品甲"
NEGOTIATION_DAYS = [14]  # the threshold the pilot deal has passed (20 days in negotiation)


@dataclass(frozen=True)
class KnownHistory:
    previous: Period  # the quarter before now's, in the zone: 120,000 won of a 200,000 target
    current: Period  # now's quarter: 80,000 commit (86 %) and 50,000 best case (71 %), target 300,000
    next: Period  # the quarter after: 30,000 pipeline (29 %), pushed there from this one 3 days ago
    won: UUID
    commit: UUID
    best_case: UUID
    ticket: UUID
    slipped: UUID
    lost: UUID
    campaign: UUID | None = None  # add_campaign_history's


def add_known_history(app: CrmApplication, zone: tzinfo, now: datetime | None = None) -> KnownHistory:
    now = now or datetime.now(timezone.utc)
    current = period_of(now, "quarter", zone)
    previous = current.previous()
    close = (current.end - timedelta(hours=12)).astimezone(zone).date()  # the current quarter's last day there

    def at(instant: datetime, actor: str = OWNER) -> Meta:
        return Meta(occurred_at=instant, actor=actor)

    customer = app.register_customer(RegisterCustomer(CUSTOMER, "华东", "制造业", "web"), at(previous.start))
    won = app.open_deal(OpenDeal(customer, WON_TITLE, "120000", owner=OWNER, stage="proposal"),
                        at(previous.start + timedelta(days=5)))
    app.win_deal(WinDeal(won, note="签约"), at(previous.start + timedelta(days=20)))
    commit = app.open_deal(OpenDeal(customer, COMMIT_TITLE, "80000", owner=OWNER, stage="negotiation",
                                    expected_close=close), at(now - timedelta(days=30)))
    app.change_stage(ChangeStage(commit, "contract_signed", reason="法务已审"), at(now - timedelta(days=25)))
    best_case = app.open_deal(OpenDeal(customer, BEST_CASE_TITLE, "50000", owner=OWNER, stage="proposal",
                                       expected_close=close), at(now - timedelta(days=40)))
    app.change_stage(ChangeStage(best_case, "negotiation", reason="客户要求折扣"), at(now - timedelta(days=20)))
    ticket = app.open_ticket(OpenTicket(customer, TICKET_SUBJECT), at(now - timedelta(days=5), "客服小王"))
    app.assign_ticket(AssignTicket(ticket, OWNER), at(now - timedelta(days=5), "客服小王"))
    app.set_target(SetTarget("owner", OWNER, previous.label, "200000"), at(previous.start, "admin"))
    app.set_target(SetTarget("owner", OWNER, current.label, "300000"), at(current.start, "admin"))
    # set now: thresholds set later count from the items' entries into the stage
    app.set_stage_reminders(SetStageReminders("sales", "negotiation", NEGOTIATION_DAYS), at(now, "admin"))
    slipped, lost = _slipped_and_lost(app, customer, close, current.next(), now)
    return KnownHistory(previous, current, current.next(), won, commit, best_case, ticket, slipped, lost)


def _slipped_and_lost(app: CrmApplication, customer: UUID, close: date, next_quarter: Period, now: datetime
                      ) -> tuple[UUID, UUID]:
    """A deal pushed out of this quarter 3 days ago (slippage in the last week) and one lost to a competitor."""
    slipped = app.open_deal(OpenDeal(customer, SLIPPED_TITLE, "30000", owner=OWNER, stage="first_contact",
                                     expected_close=close), Meta(occurred_at=now - timedelta(days=40), actor=OWNER))
    app.change_expected_close(ChangeExpectedClose(slipped, next_quarter.first + timedelta(days=14), "客户预算推迟"),
                              Meta(occurred_at=now - timedelta(days=3), actor=OWNER))
    lost = app.open_deal(OpenDeal(customer, LOST_TITLE, "60000", owner=OWNER, stage="proposal", expected_close=close),
                         Meta(occurred_at=now - timedelta(days=50), actor=OWNER))
    app.lose_deal(LoseDeal(lost, LOSS_REASON, COMPETITOR), Meta(occurred_at=now - timedelta(days=10), actor=OWNER))
    return slipped, lost


CAMPAIGN = "春季推广 / Spring"
CAMPAIGN_OWNER = "孙丽"  # another owner the demo has not: her won deal leaves 赵敏's forecast as it is
RESPONSES = {"A": 12, "B": 30}  # of 200 exposures each: 6 % against 15 %, p ≈ 0.003 — B wins


def add_campaign_history(app: CrmApplication, now: datetime | None = None) -> UUID:
    """A campaign's A/B test (copy A, offer B), each variant shown 200 times, responses by customers naming
    their variant, and one B respondent's 90,000 deal won: attributed to B under every model."""
    now = now or datetime.now(timezone.utc)

    def at(days: float) -> Meta:
        return Meta(occurred_at=now - timedelta(days=days), actor="市场部")

    campaign = app.plan_campaign(PlanCampaign(CAMPAIGN, "social", "20000"), at(60))
    app.define_variants(DefineVariants(campaign, [{"key": "A", "name": "原文案", "copy": "春季八折", "weight": 1},
                                                 {"key": "B", "name": "新文案", "offer": "买一送一", "weight": 1}],
                                       "首轮"), at(59))
    app.launch_campaign(LaunchCampaign(campaign), at(58))
    respondents = []
    for key, count in RESPONSES.items():
        app.record_exposures(RecordExposures(campaign, key, 200), at(57))
        for n in range(count):
            customer = app.register_customer(RegisterCustomer(f"春季客户{key}{n}", "华东", "零售", "social"), at(56))
            app.record_response(RecordResponse(campaign, "click", customer_id=customer, variant=key), at(50))
            respondents.append(customer)
    deal = app.open_deal(OpenDeal(respondents[-1], "春季订单", "90000", owner=CAMPAIGN_OWNER), at(40))
    app.win_deal(WinDeal(deal), at(30))
    return campaign
