"""Deal: moves through its pipeline's open stages, is won or lost, and can be reopened."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from domain.base import Meta
from domain.deal import Deal
from domain.errors import DomainError
from domain.partitions import in_partition, partition_of
from domain.vocabulary import Terms, Vocabularies

CUSTOMER = UUID("00000000-0000-0000-0000-0000000000c1")
SALES_STAGES = "lead, first_contact, needs_analysis, proposal, negotiation, contract_signed"


@pytest.fixture
def open_deal(sales_pipeline, meta_at):
    """Factory for a deal in the sales pipeline, opened at T0 by 李娜."""

    def make(**overrides) -> Deal:
        kwargs = dict(
            pipeline=sales_pipeline, customer_id=CUSTOMER, title="华东区年度采购", amount="120000.00",
            currency="CNY", owner="李娜", meta=meta_at(0),
        )
        kwargs.update(overrides)
        return Deal.open(**kwargs)

    return make


@pytest.fixture
def deal(open_deal) -> Deal:
    return open_deal()


# --- opening -------------------------------------------------------------------------------------


def test_open_starts_in_first_stage_with_all_fields(open_deal, meta_at):
    lead_id, campaign_id = uuid4(), uuid4()
    deal = open_deal(expected_close=date(2026, 6, 30), lead_id=lead_id, campaign_id=campaign_id)
    assert deal.stage == "lead"
    assert deal.is_open and deal.status == "open"
    assert deal.amount == Decimal("120000.00")
    assert (deal.currency, deal.owner, deal.pipeline) == ("CNY", "李娜", "sales")
    assert deal.expected_close == date(2026, 6, 30)
    (opened,) = deal.pending_events
    assert isinstance(opened, Deal.Opened)
    assert (opened.lead_id, opened.campaign_id, opened.customer_id) == (lead_id, campaign_id, CUSTOMER)
    assert opened.occurred_at == meta_at(0).occurred_at
    assert opened.actor == "李娜"


def test_open_in_explicit_stage(open_deal):
    assert open_deal(stage="proposal").stage == "proposal"


def test_open_uses_given_id(open_deal):
    deal_id = in_partition(partition_of(CUSTOMER), uuid4())  # in its customer's home partition
    assert open_deal(id=deal_id).id == deal_id


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stage": "qualification"},
         f"unknown stage 'qualification' in pipeline 'sales'; stages are: {SALES_STAGES}"),
        ({"stage": "won"}, "unknown stage 'won'"),
        ({"amount": "-1"}, "amount must not be negative (got -1)"),
        ({"amount": 99.5}, "amount must be a decimal string or integer, not float"),
        ({"amount": "NaN"}, "amount must be finite"),
        ({"amount": Decimal("NaN")}, "amount must be finite"),
        ({"amount": "十万"}, "amount '十万' is not a number"),
        ({"currency": "cny"}, "currency 'cny' must be a three-letter ISO code"),
        ({"currency": "RMB¥"}, "currency 'RMB¥' must be a three-letter ISO code"),
        ({"title": "  "}, "deal title must not be empty"),
        ({"owner": ""}, "owner must not be empty"),
        ({"expected_close": date(1, 1, 1)}, "expected_close must be between 1900-01-01 and 2999-12-31 (UTC) (got "
                                            "0001-01-01)"),
        ({"expected_close": date(9999, 12, 31)}, "expected_close must be between 1900-01-01 and 2999-12-31"),
        ({"expected_close": date(1899, 12, 31)}, "expected_close must be between 1900-01-01 and 2999-12-31"),
        ({"expected_close": date(3000, 1, 1)}, "expected_close must be between 1900-01-01 and 2999-12-31"),
        ({"expected_close": "2026-06-30"}, "expected_close must be a date like 2026-06-30, not str"),
    ],
)
def test_open_refusals(open_deal, overrides, message):
    with pytest.raises(DomainError, match=re.escape(message)):
        open_deal(**overrides)


@pytest.mark.parametrize("day", [date(1900, 1, 1), date(2026, 6, 30), date(2999, 12, 31)])
def test_expected_close_within_business_years_is_kept(open_deal, day):
    assert open_deal(expected_close=day).expected_close == day


# --- stages ----------------------------------------------------------------------------------------


def test_change_stage_records_from_to_reason_and_meta(deal, sales_pipeline):
    shanghai = timezone(timedelta(hours=8))
    meta = Meta(occurred_at=datetime(2026, 3, 2, 17, 30, tzinfo=shanghai), actor="王伟", correlation_id="req-42")
    deal.change_stage(sales_pipeline, "needs_analysis", "客户确认了预算", meta)
    assert deal.stage == "needs_analysis"
    event = deal.pending_events[-1]
    assert isinstance(event, Deal.StageChanged)
    assert (event.from_stage, event.to_stage, event.reason) == ("lead", "needs_analysis", "客户确认了预算")
    assert event.actor == "王伟"
    assert event.correlation_id == "req-42"
    # business time is kept as the same instant, normalised to UTC
    assert event.occurred_at == datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert deal.version == 2


def test_stages_can_move_backwards(deal, sales_pipeline, meta_at):
    deal.change_stage(sales_pipeline, "negotiation", "", meta_at(1))
    deal.change_stage(sales_pipeline, "proposal", "需要重新报价", meta_at(2))
    assert deal.stage == "proposal"
    assert deal.pending_events[-1].from_stage == "negotiation"


def test_change_to_unknown_stage_lists_valid_stages(deal, sales_pipeline, meta_at, refuse):
    refuse(deal, re.escape(f"unknown stage 'closing' in pipeline 'sales'; stages are: {SALES_STAGES}"),
           lambda: deal.change_stage(sales_pipeline, "closing", "", meta_at(1)))


def test_change_stage_to_won_is_refused_use_win(deal, sales_pipeline, meta_at, refuse):
    refuse(deal, "unknown stage 'won'", lambda: deal.change_stage(sales_pipeline, "won", "", meta_at(1)))


def test_change_to_current_stage_is_refused(deal, sales_pipeline, meta_at, refuse):
    refuse(deal, "deal is already in stage 'lead'", lambda: deal.change_stage(sales_pipeline, "lead", "", meta_at(1)))


def test_change_stage_with_another_pipeline_is_refused(deal, marketing_pipeline, meta_at, refuse):
    refuse(deal, "deal belongs to pipeline 'sales', not 'marketing'",
           lambda: deal.change_stage(marketing_pipeline, "contacted", "", meta_at(1)))


def test_stage_inserted_into_pipeline_is_usable(deal, sales_pipeline, meta_at):
    sales_pipeline.insert_stage("demo", "演示", "lead", meta_at(1))
    deal.change_stage(sales_pipeline, "demo", "安排演示", meta_at(2))
    assert deal.stage == "demo"


# --- closing ---------------------------------------------------------------------------------------


def test_win_records_stage_it_was_won_from(deal, sales_pipeline, meta_at):
    deal.change_stage(sales_pipeline, "contract_signed", "", meta_at(1))
    deal.win(meta_at(2, actor="王伟"), note="合同已盖章")
    assert deal.status == "won" and not deal.is_open
    assert deal.stage == "contract_signed"
    event = deal.pending_events[-1]
    assert isinstance(event, Deal.Won)
    assert (event.from_stage, event.note, event.actor) == ("contract_signed", "合同已盖章", "王伟")


def test_lose_records_stage_and_reason(deal, sales_pipeline, meta_at):
    deal.change_stage(sales_pipeline, "proposal", "", meta_at(1))
    deal.lose("价格高于竞争对手", meta_at(2))
    assert deal.status == "lost"
    event = deal.pending_events[-1]
    assert isinstance(event, Deal.Lost)
    assert (event.from_stage, event.reason) == ("proposal", "价格高于竞争对手")


def test_a_deal_lost_without_a_reason_is_lost_for_an_unknown_reason(deal, meta_at):
    deal.lose("  ", meta_at(1))

    assert deal.status == "lost"
    assert deal.pending_events[-1].reason == "unknown"


def test_a_loss_reason_outside_a_closed_vocabulary_is_refused(deal, meta_at, refuse):
    reasons = Vocabularies({"loss_reason": Terms("loss_reason", ("价格", "竞品"), open=False)})

    refuse(deal, "unknown loss reason '太贵'; expected one of: 价格, 竞品",
           lambda: deal.lose("太贵", meta_at(1), vocabularies=reasons))
    deal.lose("价格", meta_at(1), vocabularies=reasons)
    assert deal.pending_events[-1].reason == "价格"


@pytest.mark.parametrize("close", ["win", "lose"])
def test_closed_deal_refuses_changes_until_reopened(deal, sales_pipeline, meta_at, refuse, close):
    if close == "win":
        deal.win(meta_at(1))
    else:
        deal.lose("预算取消", meta_at(1))
    status = deal.status
    refuse(deal, f"cannot change its stage: deal is {status}; reopen it first",
           lambda: deal.change_stage(sales_pipeline, "proposal", "", meta_at(2)))
    refuse(deal, f"cannot change its amount: deal is {status}; reopen it first",
           lambda: deal.change_amount("1", meta_at(2)))
    refuse(deal, f"cannot win it: deal is {status}", lambda: deal.win(meta_at(2)))
    refuse(deal, f"cannot lose it: deal is {status}", lambda: deal.lose("再次", meta_at(2)))


# --- reopening -------------------------------------------------------------------------------------


def test_reopen_of_open_deal_is_refused(deal, sales_pipeline, meta_at, refuse):
    refuse(deal, "deal is already open", lambda: deal.reopen(sales_pipeline, "客户回心转意", meta_at(1)))


def test_reopen_defaults_to_stage_it_was_closed_from(deal, sales_pipeline, meta_at):
    deal.change_stage(sales_pipeline, "negotiation", "", meta_at(1))
    deal.lose("预算冻结", meta_at(2))
    deal.reopen(sales_pipeline, "预算解冻", meta_at(3))
    assert deal.is_open
    assert deal.stage == "negotiation"
    event = deal.pending_events[-1]
    assert isinstance(event, Deal.Reopened)
    assert (event.stage, event.reason) == ("negotiation", "预算解冻")


def test_reopen_into_explicit_stage_then_move_on(deal, sales_pipeline, meta_at):
    deal.change_stage(sales_pipeline, "contract_signed", "", meta_at(1))
    deal.win(meta_at(2))
    deal.reopen(sales_pipeline, "合同被撤回", meta_at(3), stage="negotiation")
    assert (deal.status, deal.stage) == ("open", "negotiation")
    deal.change_stage(sales_pipeline, "contract_signed", "重新签署", meta_at(4))
    assert deal.pending_events[-1].from_stage == "negotiation"


def test_reopen_refusals(deal, sales_pipeline, marketing_pipeline, meta_at, refuse):
    deal.win(meta_at(1))
    refuse(deal, "unknown stage 'closing' in pipeline 'sales'; stages are: lead,",
           lambda: deal.reopen(sales_pipeline, "撤回", meta_at(2), stage="closing"))
    refuse(deal, "unknown stage 'lost'", lambda: deal.reopen(sales_pipeline, "撤回", meta_at(2), stage="lost"))
    refuse(deal, "reopen reason must not be empty", lambda: deal.reopen(sales_pipeline, "", meta_at(2)))
    refuse(deal, "deal belongs to pipeline 'sales', not 'marketing'",
           lambda: deal.reopen(marketing_pipeline, "撤回", meta_at(2)))


# --- amount and owner ------------------------------------------------------------------------------


def test_change_amount_records_old_and_new(deal, meta_at):
    deal.change_amount("150000.50", meta_at(1))
    assert deal.amount == Decimal("150000.50")
    event = deal.pending_events[-1]
    assert isinstance(event, Deal.AmountChanged)
    assert (event.old_amount, event.new_amount) == (Decimal("120000.00"), Decimal("150000.50"))


@pytest.mark.parametrize(
    ("new_amount", "message"),
    [
        (120000, "deal amount is already 120000"),
        ("-0.01", "amount must not be negative (got -0.01)"),
        (1.5, "amount must be a decimal string or integer, not float"),
        ("Infinity", "amount must be finite"),
        (True, "not bool"),
    ],
)
def test_change_amount_refusals(deal, meta_at, refuse, new_amount, message):
    refuse(deal, re.escape(message), lambda: deal.change_amount(new_amount, meta_at(1)))


def test_change_owner(deal, meta_at, refuse):
    deal.change_owner(" 王伟 ", meta_at(1))
    assert deal.owner == "王伟"
    event = deal.pending_events[-1]
    assert (event.old_owner, event.new_owner) == ("李娜", "王伟")
    refuse(deal, "deal is already owned by '王伟'", lambda: deal.change_owner("王伟", meta_at(2)))
    refuse(deal, "owner must not be empty", lambda: deal.change_owner("", meta_at(2)))


# --- business time and replay ----------------------------------------------------------------------


def test_command_earlier_than_last_event_is_refused(deal, sales_pipeline, meta_at, refuse):
    deal.change_stage(sales_pipeline, "proposal", "", meta_at(3))
    refuse(deal, r"occurred_at 2026-03-03T09:00:00\+00:00 is before this Deal's last event at 2026-03-04T09:00:00\+00:00",
           lambda: deal.change_stage(sales_pipeline, "negotiation", "", meta_at(2)))


def test_a_clock_stamp_overtaken_by_a_saved_event_is_recorded_at_that_event_s_instant(deal, sales_pipeline,
                                                                                      meta_at):
    stamped_first = Meta.now("王伟")  # a request stamped by the clock, then a concurrent one saved first
    later = Meta(occurred_at=stamped_first.occurred_at + timedelta(milliseconds=5), actor="李娜")
    deal.change_stage(sales_pipeline, "proposal", "", later)

    deal.change_amount("2000", stamped_first)

    assert deal.pending_events[-1].occurred_at == later.occurred_at and deal.pending_events[-1].actor == "王伟"


def test_command_at_same_instant_as_last_event_is_accepted(deal, sales_pipeline, meta_at):
    deal.change_stage(sales_pipeline, "proposal", "", meta_at(3))
    deal.change_stage(sales_pipeline, "negotiation", "", meta_at(3))
    assert deal.stage == "negotiation"


def test_chinese_text_round_trips_through_events(open_deal, sales_pipeline, meta_at, replay):
    deal = open_deal(title="北京·朝阳区 智慧园区项目（二期）", owner="欧阳娜娜")
    deal.change_stage(sales_pipeline, "proposal", "客户说：“预算已批，下周签约！”", meta_at(1, actor="张三丰"))
    deal.lose("竞争对手报价低 20%，客户选择了对方", meta_at(2))
    events = deal.collect_events()
    assert events[0].title == "北京·朝阳区 智慧园区项目（二期）"
    assert events[0].owner == "欧阳娜娜"
    assert events[1].reason == "客户说：“预算已批，下周签约！”"
    assert events[1].actor == "张三丰"
    assert events[2].reason == "竞争对手报价低 20%，客户选择了对方"
    assert replay(events).title == "北京·朝阳区 智慧园区项目（二期）"


def test_replaying_a_deal_lifecycle_rebuilds_the_same_deal(deal, sales_pipeline, meta_at, assert_replays):
    deal.change_stage(sales_pipeline, "proposal", "方案已发", meta_at(1))
    deal.change_amount("98000", meta_at(2))
    deal.change_owner("王伟", meta_at(3))
    deal.lose("预算冻结", meta_at(4))
    deal.reopen(sales_pipeline, "预算解冻", meta_at(5))
    deal.win(meta_at(6))
    rebuilt = assert_replays(deal)
    assert (rebuilt.status, rebuilt.stage, rebuilt.amount, rebuilt.owner) == ("won", "proposal", Decimal("98000"), "王伟")
    assert rebuilt.version == 7
    assert rebuilt.last_occurred_at == meta_at(6).occurred_at


def test_a_deal_keeps_the_lead_and_campaign_it_came_from(open_deal) -> None:
    lead_id, campaign_id = uuid4(), uuid4()

    deal = open_deal(lead_id=lead_id, campaign_id=campaign_id)

    assert (deal.lead_id, deal.campaign_id) == (lead_id, campaign_id)


# --- forecasting: expected close, probability, category ------------------------------------------


def test_a_deals_forecast_changes_by_events_with_a_reason(deal: Deal, sales_pipeline, meta_at, assert_replays) -> None:
    assert deal.forecast(sales_pipeline).to_dict() == {"probability": 14, "forecast_category": "pipeline"}
    deal.change_expected_close(date(2026, 6, 30), "客户预算推迟到下季度", meta_at(1))
    deal.change_probability(70, "口头确认", meta_at(2))
    deal.change_forecast_category("commit", "", meta_at(3))
    assert (deal.expected_close, deal.forecast(sales_pipeline).to_dict()) == (
        date(2026, 6, 30), {"probability": 70, "forecast_category": "commit"})
    closed = [e for e in deal.collect_events() if isinstance(e, Deal.ExpectedCloseChanged)]
    assert (closed[0].old_close, closed[0].reason) == (None, "客户预算推迟到下季度")


def test_a_stage_change_goes_back_to_the_new_stages_defaults(deal: Deal, sales_pipeline, meta_at) -> None:
    deal.change_probability(90, "", meta_at(1))
    deal.change_stage(sales_pipeline, "negotiation", "", meta_at(2))
    assert (deal.own_probability, deal.forecast(sales_pipeline).to_dict()) == (
        None, {"probability": 71, "forecast_category": "best_case"})
    deal.win(meta_at(3))
    assert deal.forecast(sales_pipeline).to_dict() == {"probability": 100, "forecast_category": "closed"}
    with pytest.raises(DomainError, match="cannot change its expected close date: deal is won"):
        deal.change_expected_close(date(2026, 7, 1), "", meta_at(4))


def test_refused_forecast_changes(deal: Deal, meta_at) -> None:
    for change, words in ((lambda: deal.change_probability(None, "", meta_at(1)), "already its stage's default"),
                          (lambda: deal.change_forecast_category("closed", "", meta_at(1)), "only for won deals"),
                          (lambda: deal.change_probability(150, "", meta_at(1)), "0 to 100"),
                          (lambda: deal.change_expected_close(date(3001, 1, 1), "", meta_at(1)), "between 1900")):
        with pytest.raises(DomainError, match=words):
            change()
