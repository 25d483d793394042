"""The funnel as of an instant: the SQL read model and the replay must both give these answers."""

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest

from projections.funnel import FunnelFilters, FunnelQueries, FunnelReadModel, FunnelReport, build_report
from projections.funnel import queries as funnel_queries
from projections.tables import micros
from services.application import CrmApplication
from services.commands import (AssignLead, AssignTicket, CaptureLead, ChangeAmount, ChangeOwner, ChangeStage,
                               ChangeTicketStatus, ContactLead, ConvertLead, DefinePipeline, DisqualifyLead,
                               InsertStage, LoseDeal, OpenDeal, OpenTicket, QualifyLead, RateTicket, RegisterCustomer,
                               ReopenDeal, ReopenTicket, ResolveTicket, Stage, WinDeal)
from services.projection_runtime.funnel_as_of import replay_funnel, stages_of
from services.projection_runtime.registry import projector_for
from services.storage.read_model_store import ReadModelStore
from services.projection_runtime.replay import replay_until
from services.settings import database_from_url
from tests.conftest import T0, at

Report = Callable[..., FunnelReport]
DWELL_PRECISION = 0.01  # dwell percentiles are taken over stay lengths classed within ±1%


@pytest.fixture
def history(crm: CrmApplication) -> dict[str, object]:
    """Three deals: A is won, B is lost in proposal then reopened, C skips straight to proposal."""
    customer = crm.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", company="某公司"), at(0))
    other = crm.register_customer(RegisterCustomer("李四", "华南", "零售", "event", company="另一公司"), at(0))
    a = crm.open_deal(OpenDeal(customer, "A", "100", owner="李娜"), at(0))
    b = crm.open_deal(OpenDeal(customer, "B", "200", owner="李娜"), at(1))
    c = crm.open_deal(OpenDeal(other, "C", "300", owner="王伟"), at(2))
    for day, stage in enumerate(["first_contact", "needs_analysis", "proposal", "negotiation", "contract_signed"], 1):
        crm.change_stage(ChangeStage(a, stage, ""), at(day * 2))  # A enters a new stage every 2 days
    crm.win_deal(WinDeal(a), at(12))
    crm.change_stage(ChangeStage(b, "first_contact", ""), at(3))
    crm.change_stage(ChangeStage(b, "proposal", "跳过需求分析"), at(4))
    crm.lose_deal(LoseDeal(b, "预算取消"), at(5))
    crm.reopen_deal(ReopenDeal(b, "重新启动"), at(20))
    crm.change_stage(ChangeStage(c, "proposal", ""), at(6))
    crm.change_owner(ChangeOwner(c, "李娜"), at(8))
    crm.change_amount(ChangeAmount(c, "450.50"), at(9))
    return {"a": a, "b": b, "c": c}


@pytest.fixture(params=["read model", "scanned read model", "replay"])
def funnel(request: pytest.FixtureRequest, crm: CrmApplication, history: dict[str, object],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Report]:
    """The sales funnel at an instant: from the read model's tallies, from its intervals (the path filters
    take), or from a replay of the log."""
    for report in _any_pipeline(request.param, crm, monkeypatch):
        yield lambda instant, **options: report("sales", instant, **options)


def _any_pipeline(path: str, crm: CrmApplication, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FunnelReport]]:
    if path == "replay":
        yield lambda pipeline, instant, **options: replay_funnel(crm, pipeline, instant, **options)
        return
    store = ReadModelStore(database_from_url("memory://"))
    projector_for(crm, store).catch_up()
    queries = FunnelQueries(store)
    if path == "scanned read model":
        monkeypatch.setattr(funnel_queries, "tallied_facts",
                            lambda _, pipeline, stages, t, zone=None: queries.scanned_facts(pipeline, stages, t))
    yield lambda pipeline, instant, **options: queries.report(pipeline, stages_of(crm, pipeline), instant, **options)
    store.close()


def _row(report: FunnelReport, stage: str) -> object:
    return next(r for r in report.rows if r.stage == stage)


def _when(days: float) -> datetime:
    return at(days).occurred_at


def test_deals_and_value_per_stage_as_of_an_instant(funnel: Report) -> None:
    report = funnel(T0 + timedelta(days=4, hours=12))

    assert {r.stage: (r.items, r.value_cents) for r in report.rows if r.items} == {
        "lead": (1, 30000), "needs_analysis": (1, 10000), "proposal": (1, 20000)}  # C, A, B
    assert (report.won, report.lost, report.open_items) == (0, 0, 3)


def test_won_lost_and_reopened_deals_as_of_different_instants(funnel: Report) -> None:
    before_reopen, after_reopen = funnel(_when(15)), funnel(_when(25))

    assert (before_reopen.won, before_reopen.lost, before_reopen.win_rate) == (1, 1, 0.5)
    assert before_reopen.won_value_cents == 10000
    assert (after_reopen.won, after_reopen.lost) == (1, 0)
    assert _row(after_reopen, "proposal").items == 2  # B reopened in proposal, C still there


def test_reached_conversion_drop_off_and_bottleneck(funnel: Report) -> None:
    report = funnel(_when(15))  # A won, B lost in proposal, C still in proposal

    assert [r.reached for r in report.rows] == [3, 3, 3, 3, 1, 1]  # B and C skipped needs analysis
    proposal = _row(report, "proposal")
    assert (proposal.advanced, proposal.lost, proposal.still_open) == (1, 1, 1)
    assert proposal.conversion_to_next == pytest.approx(1 / 2)  # C, still open, is not a failure
    assert proposal.drop_off == pytest.approx(1 / 2) and proposal.conversion_note is None
    assert _row(report, "contract_signed").conversion_to_next == 1.0  # the one there was won
    assert report.bottleneck == "proposal"


def test_conversion_and_win_rate_are_missing_without_a_decided_item_or_a_loss(funnel: Report) -> None:
    no_loss, nothing_decided = funnel(_when(30)), funnel(_when(4))  # B reopened by day 30; none decided by 4

    assert (no_loss.won, no_loss.lost, no_loss.win_rate) == (1, 0, None)  # not 100 %
    assert no_loss.win_rate_note is not None and "no lost items" in no_loss.win_rate_note
    assert _row(no_loss, "proposal").conversion_to_next is None and no_loss.bottleneck is None
    assert (nothing_decided.win_rate, nothing_decided.win_rate_note) == (None, "no decided items (none advanced or lost)")
    negotiation = _row(nothing_decided, "negotiation")
    assert (negotiation.reached, negotiation.conversion_to_next, negotiation.conversion_note) == (
        0, None, "no item reached it")


def test_dwell_times_count_only_stays_that_had_ended(funnel: Report) -> None:
    early, late = funnel(_when(5.5)), funnel(_when(30))

    assert _row(early, "lead").median_days == pytest.approx(2.0, rel=DWELL_PRECISION)  # A: 0→2, B: 1→3 ended;
    assert _row(late, "lead").median_days == pytest.approx(2.0, rel=DWELL_PRECISION)  # C's had not; later C 4
    assert _row(late, "lead").p90_days == pytest.approx(3.6, rel=DWELL_PRECISION)  # between 2 and 4
    assert _row(early, "negotiation").median_days is None


def test_average_sales_cycle_of_won_deals(funnel: Report) -> None:
    assert funnel(_when(11)).average_cycle_days is None
    assert funnel(_when(30)).average_cycle_days == pytest.approx(12.0)


def test_owner_and_amount_are_taken_as_of_the_instant(funnel: Report) -> None:
    before, after = funnel(_when(7), filters=FunnelFilters(owner="王伟")), funnel(_when(10))

    assert _row(before, "proposal").items == 1  # C still belonged to 王伟 on day 7
    assert funnel(_when(10), filters=FunnelFilters(owner="王伟")).open_items == 0
    assert _row(after, "proposal").value_cents == 45050


def test_customer_attribute_filters(funnel: Report) -> None:
    south = funnel(_when(30), filters=FunnelFilters(region="华南"))
    events = funnel(_when(30), filters=FunnelFilters(channel="event", industry="零售"))

    assert [r.reached for r in south.rows] == [1, 1, 1, 1, 0, 0]  # only C
    assert events.open_items == 1 and funnel(_when(30), filters=FunnelFilters(region="西北")).open_items == 0


def test_deals_stuck_longer_than_a_threshold_are_listed_longest_first(funnel: Report,
                                                                     history: dict[str, object]) -> None:
    report = funnel(_when(40), stuck_days=19)

    assert [(s.item_id, s.stage, s.owner) for s in report.stuck] == [(history["c"], "proposal", "李娜"),
                                                                     (history["b"], "proposal", "李娜")]
    assert [round(s.days_in_stage, 3) for s in report.stuck] == [34.0, 20.0]


def test_the_funnel_before_any_deal_is_empty(funnel: Report) -> None:
    report = funnel(_when(-1))

    assert report.open_items == 0 and [r.reached for r in report.rows] == [0] * 6
    assert report.win_rate is None and report.bottleneck is None


def test_flow_between_two_instants(crm: CrmApplication, history: dict[str, object]) -> None:
    store = ReadModelStore(database_from_url("memory://"))
    projector_for(crm, store).catch_up()

    flow = {r.stage: r for r in FunnelQueries(store).flow("sales", stages_of(crm, "sales"), _when(3), _when(7))}

    assert (flow["proposal"].entered, flow["proposal"].lost) == (3, 1)  # A (day 6), B (day 4), C (day 6); B lost
    assert flow["lead"].advanced == 2  # B (day 3) and C (day 6); A left lead on day 2
    assert flow["first_contact"].advanced == 2  # A and B, both on day 4
    assert flow["lead"].entered == 0  # every deal was opened before day 3


@pytest.fixture
def leads_and_tickets(crm: CrmApplication) -> dict[str, object]:
    """Lead L1 is converted, L2 is disqualified after contact; ticket K1 is rated 5, K2 rated 2 then reopened."""
    l1 = crm.capture_lead(CaptureLead("王五", "华北", "金融", "event"), at(0))
    l2 = crm.capture_lead(CaptureLead("赵六", "西南", "医疗", "web"), at(0))
    for lead in (l1, l2):
        crm.assign_lead(AssignLead(lead, "陈杰", "industry"), at(1))
        crm.contact_lead(ContactLead(lead, "phone", "首次沟通"), at(2))
    crm.contact_lead(ContactLead(l2, "email", "第二次沟通"), at(3))  # a second contact is no new step
    crm.disqualify_lead(DisqualifyLead(l2, "无预算"), at(4))
    crm.qualify_lead(QualifyLead(l1, "预算明确"), at(5))
    customer_id, _ = crm.convert_lead(ConvertLead(l1, "采购", "1000", "CNY"), at(6))
    k1 = crm.open_ticket(OpenTicket(customer_id, "登录失败", "phone", priority="high"), at(7))
    k2 = crm.open_ticket(OpenTicket(customer_id, "发票问题", "email", priority="low"), at(7))
    for ticket, score in ((k1, 5), (k2, 2)):
        crm.assign_ticket(AssignTicket(ticket, "赵磊"), at(7.5))
        crm.change_ticket_status(ChangeTicketStatus(ticket, "in_progress"), at(8))
        crm.resolve_ticket(ResolveTicket(ticket, "已处理"), at(9))
        crm.rate_ticket(RateTicket(ticket, score, ""), at(10))
    crm.reopen_ticket(ReopenTicket(k2, "问题再次出现"), at(11))
    return {"l1": l1, "l2": l2, "k1": k1, "k2": k2}


@pytest.fixture(params=["read model", "scanned read model", "replay"])
def any_funnel(request: pytest.FixtureRequest, crm: CrmApplication, leads_and_tickets: dict[str, object],
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FunnelReport]]:
    """Like `funnel`, for any pipeline."""
    yield from _any_pipeline(request.param, crm, monkeypatch)


def test_the_marketing_funnel_follows_leads_from_capture_to_conversion(any_funnel: Callable[..., FunnelReport]) -> None:
    during, after = any_funnel("marketing", _when(2.5)), any_funnel("marketing", _when(20))

    assert _row(during, "contacted").items == 2
    assert [r.reached for r in after.rows] == [2, 2, 2, 1]
    assert (after.won, after.lost, after.win_rate) == (1, 1, 0.5)  # converted / disqualified
    assert _row(after, "contacted").median_days == pytest.approx(2.5, rel=DWELL_PRECISION)  # L2 left day 4, L1 5
    assert any_funnel("marketing", _when(20), filters=FunnelFilters(region="华北")).won == 1


def test_the_service_funnel_ends_in_satisfied_or_dissatisfied_ratings(any_funnel: Callable[..., FunnelReport]) -> None:
    rated, reopened = any_funnel("service", _when(10.5)), any_funnel("service", _when(12))

    assert (rated.won, rated.lost) == (1, 1)  # rated 5 → satisfied, rated 2 → dissatisfied
    assert [r.reached for r in rated.rows] == [2, 2, 2]
    assert (reopened.won, reopened.lost, _row(reopened, "feedback").items) == (1, 0, 1)
    assert any_funnel("service", _when(10.5), filters=FunnelFilters(owner="赵磊", region="华北")).won == 1


def test_segment_filter_takes_the_customers_tier_at_the_instant(funnel: Report) -> None:
    potential = funnel(_when(15), filters=FunnelFilters(segment="potential"))
    ordinary = funnel(_when(15), filters=FunnelFilters(segment="ordinary"))

    assert [r.reached for r in potential.rows] == [1, 1, 1, 1, 0, 0]  # 李四 has C open: potential
    assert (ordinary.won, ordinary.lost) == (1, 1)  # 张三 bought once (small) and has nothing open on day 15
    assert funnel(_when(25), filters=FunnelFilters(segment="ordinary")).open_items == 0  # B reopened: potential


def test_a_stage_inserted_later_keeps_every_path_in_agreement(crm: CrmApplication) -> None:
    customer = crm.register_customer(RegisterCustomer("王五", "华北", "金融", "web", company="新公司"), at(0))
    early = crm.open_deal(OpenDeal(customer, "早", "100", owner="李娜"), at(0))
    crm.change_stage(ChangeStage(early, "needs_analysis", ""), at(1))
    crm.insert_stage(InsertStage("sales", "demo", "产品演示", "first_contact"), at(2))
    late = crm.open_deal(OpenDeal(customer, "晚", "200", owner="李娜"), at(3))
    crm.change_stage(ChangeStage(late, "demo", ""), at(4))
    store = ReadModelStore(database_from_url("memory://"))
    projector_for(crm, store).catch_up()
    queries, stages = FunnelQueries(store), stages_of(crm, "sales")

    tallied = queries.report("sales", stages, _when(5))
    scanned = build_report("sales", stages, _when(5), queries.scanned_facts("sales", stages, micros(_when(5))))
    assert [r.reached for r in tallied.rows] == [2, 2, 2, 1, 0, 0, 0]  # lead, first contact, demo, needs analysis…
    assert tallied == replay_funnel(crm, "sales", _when(5)) == scanned


def test_a_deal_dated_before_its_pipeline_was_defined_replays_to_any_instant(crm: CrmApplication) -> None:
    crm.define_pipeline(DefinePipeline("channel", "渠道销售", [Stage("intro", "介绍"), Stage("trial", "试用")]), at(30))
    crm.insert_stage(InsertStage("channel", "quote", "报价", "intro"), at(31))
    customer = crm.register_customer(RegisterCustomer("王五", "华北", "金融", "web", company="新公司"), at(0))
    deal = crm.open_deal(OpenDeal(customer, "早", "100", pipeline="channel", owner="李娜"),
                         at(1))  # back-dated, as an import would
    crm.change_stage(ChangeStage(deal, "quote", ""), at(2))
    live = ReadModelStore(database_from_url("memory://"))
    projector_for(crm, live).catch_up()
    stages = stages_of(crm, "channel")

    replayed = replay_until(crm, [FunnelReadModel()], _when(3))

    report = FunnelQueries(live).report("channel", stages, _when(3))
    assert [(r.stage, r.items, r.reached) for r in report.rows] == [("intro", 0, 1), ("quote", 1, 1),
                                                                        ("trial", 0, 0)]
    assert FunnelQueries(replayed).report("channel", stages, _when(3)) == report == replay_funnel(crm, "channel", _when(3))

