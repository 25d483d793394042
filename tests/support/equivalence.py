"""Random CRM histories for property tests: incremental read models == full rebuild == replay to T.

A history is a list of operations on random aggregates; each aggregate keeps its own business clock
(so its events never run backwards), while different aggregates start at random instants — as when
history is imported out of order. The projector catches up at random points with random batch sizes.
The partitioned path spreads a history's log over partitions and applies them in random interleavings
(or by concurrent workers): the same answers again.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from unittest.mock import patch
from uuid import UUID

import orjson
from hypothesis import strategies as st

from domain.base import Meta
from domain.campaign import Campaign
from domain.deal import Deal
from domain.errors import DomainError
from domain.lead import Lead
from domain.partitions import is_reference, partition_of
from domain.periods import UTC
from domain.pipeline import Pipeline
from domain.ticket import Ticket
from domain.vocabulary import vocabulary_id
from projections.funnel import FunnelFilters, FunnelReplay
from projections.funnel.tally import merge, tallied_facts
from projections.rates import RateQueries
from projections.segments import SegmentQueries
from projections.tables import micros, year_of
from projections.read_model import ReadModel
from projections.tickets import TicketQueries
from services.application import AlreadyExists, CrmApplication, NotFound
from services.commands import (AssignLead, AssignTicket, CaptureLead, ChangeAmount, ChangeCustomerProperties,
                               ChangeDealProperties, ChangeLeadProperties, ChangeOwner, ChangeStage,
                               ChangeTicketStatus, CloseCampaign, CloseTicket, ContactLead, ConvertLead, DisqualifyLead,
                               ForgetCustomer, LaunchCampaign, LogTouch, LoseDeal, OpenDeal, OpenTicket, PlanCampaign,
                               QualifyLead, RateTicket, RecordCost, RecordExchangeRate, RecordResponse,
                               RegisterCustomer, ReopenDeal, ReopenTicket, ResolveTicket, WinDeal)
from services.commands.ab_tests import DeclareWinner, DefineVariants, RecordExposures, StopVariant
from services.commands.forecasts import (AssignTeam, ChangeExpectedClose, ChangeForecastCategory, ChangeProbability,
                                         SetStageForecast, SetTarget)
from services.commands.vocabularies import AddVocabularyValue
from services.projection_runtime.funnel_as_of import conversion_from_log, funnel_queries, segment_members, stages_of
from services.projection_runtime.model_settings import configured
from services.projection_runtime.partitioned import Delivery, PartitionedProjector, aggregate_kind
from services.projection_runtime.projector import Projector
from services.projection_runtime.registry import READ_MODELS, summaries
from services.storage.read_model_store import ReadModelStore
from services.settings import Database, database_from_url
from services.projection_runtime.replay import replay_until
from tests.conftest import T0

OWNERS = ("李娜", "王伟")
CURRENCIES = ("CNY", "USD", "BRL")  # deals and campaigns in each; rates recorded for the others at random dates
RATES = ("7.1", "6.95", "1.25", "0.333333")
REGIONS = ("华东", "华南", "")  # "": absent, stored as unknown
CHANNELS = ("web", "渠道0", "", "渠道1")  # 渠道N: an installation's own, added by a "vocabulary" operation
SALES_STAGES = ("lead", "first_contact", "needs_analysis", "proposal", "negotiation", "contract_signed")
# Operation kinds, repeated to weight them: most operations take an existing aggregate one step further.
KINDS = ("customer",) * 2 + ("lead",) * 2 + ("campaign", "lose", "reopen", "amount", "owner") + ("deal",) * 3 \
    + ("advance",) * 6 + ("lead_step",) * 5 + ("ticket",) * 2 + ("ticket_step",) * 4 + ("touch",) * 2 \
    + ("campaign_step",) * 2 + ("forget", "vocabulary") + ("properties",) * 3 + ("rate",) * 2 \
    + ("forecast",) * 3 + ("target", "team", "stage_forecast")
TEAMS = ("华东一组", "华南组", "")  # "": out of any team
CATEGORIES = ("pipeline", "best_case", "commit", "omitted", None)  # None: back to the stage's default
PIPELINES_DEFINED = T0 - timedelta(days=30)  # before every history, so that stage defaults set later show as of T
PRODUCTS = ("GTX", "MG", "")  # "" removes the property
COMPETITORS = ("竞品甲", "", "Rival Inc")  # who won a lost deal ("": unknown)
SEED_OPERATIONS = [("campaign", 0, 0, False), ("customer", 1, 0, False), ("customer", 2, 5, False),
                   ("lead", 3, 0, False), ("lead", 4, 0, False)]

operations = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 50), st.integers(0, 20 * 24), st.booleans()),
    min_size=20, max_size=90,
).map(lambda ops: SEED_OPERATIONS + ops)
instants = st.lists(st.integers(-2, 150), min_size=1, max_size=3)  # days after T0
batch_sizes = st.integers(1, 40)


@dataclass
class _World:
    app: CrmApplication
    clocks: dict[UUID, datetime] = field(default_factory=dict)
    ids: dict[str, list[UUID]] = field(default_factory=lambda: {k: [] for k in ("customer", "deal", "lead",
                                                                                 "ticket", "campaign")})

    vocabulary_clock: UUID = field(default_factory=lambda: vocabulary_id("acquisition_channel"))  # one clock for both

    def pick(self, kind: str, index: int) -> UUID | None:
        found = self.ids[kind]
        return found[index % len(found)] if found else None

    def meta(self, aggregate_id: UUID | None, hours: int, index: int) -> Meta:
        """Business time: after this aggregate's last event, or a fresh start for a new one."""
        base = self.clocks.get(aggregate_id) if aggregate_id else None
        start = base if base is not None else T0 + timedelta(days=index * 2)
        return Meta(occurred_at=start + timedelta(hours=hours), actor=OWNERS[index % 2])

    @staticmethod
    def external(index: int) -> dict[str, str]:
        """Most records come with an external id, from two sources whose bare ids collide (1 in 14 repeats
        one of its source and kind: refused as already there)."""
        return {} if index % 3 == 2 else {"source": ("salesforce", "hubspot")[index % 2], "external_id": str(index % 7)}

    def record(self, aggregate_ids: list[UUID], meta: Meta) -> None:
        """Each aggregate's clock is its last event's instant (an old-style response may have moved a
        campaign's past the step's own meta: later steps on it were refused as running backwards)."""
        for aggregate_id in aggregate_ids:
            self.clocks[aggregate_id] = max(meta.occurred_at, self.clocks.get(aggregate_id, meta.occurred_at))


def apply_history(app: CrmApplication, ops: list[tuple[str, int, int, bool]],
                  on_sync: Callable[[], None]) -> None:
    """Run the operations (refused ones are skipped, as a user would see them refused); sync where asked."""
    world = _World(app)
    for kind, index, hours, sync in ops:
        try:
            _apply(world, kind, index, hours)
        except (DomainError, AlreadyExists):
            pass
        if sync:
            on_sync()


def _apply(w: _World, kind: str, i: int, hours: int) -> None:  # noqa: C901 - one branch per operation
    app, owner, region, channel = w.app, OWNERS[i % 2], REGIONS[i % 3], CHANNELS[i % 4]
    if kind == "vocabulary":  # values added in business time order: a vocabulary is one aggregate too
        kind_of = ("acquisition_channel", "touch_channel")[i % 2]
        meta = w.meta(w.vocabulary_clock, hours, i)
        app.add_vocabulary_value(AddVocabularyValue(kind_of, f"渠道{i % 2}"), meta)
        w.record([w.vocabulary_clock], meta)
    elif kind == "customer":
        meta = w.meta(None, hours, i)
        new = app.register_customer(RegisterCustomer(f"客户{i}", region, "制造业", channel, company="公司",
                                                       **w.external(i)), meta)
        w.ids["customer"].append(new)
        w.record([new], meta)
    elif kind == "lead":
        meta = w.meta(None, hours, i)
        campaign = w.pick("campaign", i)
        new = app.capture_lead(CaptureLead(f"线索{i}" if i % 4 else "", region, "零售", ("event", *CHANNELS)[i % 5],
                                           campaign_id=campaign, variant=_variant_of(w, campaign, i),
                                           **w.external(i)), meta)
        w.ids["lead"].append(new)
        w.record([new], meta)
    elif kind == "campaign":
        meta = w.meta(None, hours, i)
        new = app.plan_campaign(PlanCampaign(f"活动{i}", "event", "10000", currency=CURRENCIES[i % 3],
                                             **w.external(i)), meta)
        w.ids["campaign"].append(new)
        w.record([new], meta)
    elif kind == "rate":  # its own business time: 00:00 UTC of its date, before or after any deal's
        quote = "EUR" if i % 10 == 9 else "CNY"
        day = (T0 + timedelta(days=(i * 5 + hours) % 160 - 10)).date()
        app.record_exchange_rate(RecordExchangeRate(CURRENCIES[1 + i % 2], RATES[(i + hours) % len(RATES)], day,
                                                    quote=quote), w.meta(None, hours, i))
    elif kind == "forget":
        customer = w.pick("customer", i)
        if customer is not None:
            meta = w.meta(customer, hours, i)
            app.forget_customer(ForgetCustomer(customer), meta)
            w.record([customer], meta)
    elif kind in ("deal", "ticket", "touch"):
        customer = w.pick("customer", i)
        if customer is None:
            return
        meta = w.meta(customer, hours, i)
        if kind == "deal":
            close = (T0 + timedelta(days=i * 5 % 150)).date() if i % 4 else None  # the forecast's period
            new = app.open_deal(OpenDeal(customer, "项目", str(100 * (i + 1)), currency=CURRENCIES[i % 3],
                                         owner=owner, campaign_id=w.pick("campaign", i), expected_close=close,
                                         **w.external(i)), meta)
        elif kind == "ticket":
            new = app.open_ticket(OpenTicket(customer, "问题", "phone", priority=("low", "urgent")[i % 2],
                                             **w.external(i)), meta)
        else:
            app.log_touch(LogTouch(customer, ("phone", "email", "visit", "", "渠道1")[i % 5], "inbound", "回访"), meta)
            w.record([customer], meta)
            return
        w.ids[kind].append(new)
        w.record([customer, new], meta)
    elif kind == "convert":
        lead = w.pick("lead", i)
        if lead is None:
            return
        meta = w.meta(lead, hours, i)
        customer, deal = app.convert_lead(ConvertLead(lead, "转化项目", "500", "CNY"), meta)
        w.ids["customer"].append(customer)
        w.ids["deal"].append(deal)
        w.record([lead, customer, deal], meta)
    elif kind == "properties":
        _properties(w, i, hours)
    elif kind in ("target", "team", "stage_forecast"):
        _forecast_setting(w, kind, i, hours)
    else:
        _change(w, kind, i, hours, owner)


def _properties(w: _World, i: int, hours: int) -> None:
    """A deal's or lead's product, or a customer's (a deal's fallback) account size and product, set or removed."""
    kind = ("deal", "lead", "customer")[i % 3]
    target = w.pick(kind, i // 3)
    if target is None:
        return
    meta = w.meta(target, hours, i)
    product = PRODUCTS[i % len(PRODUCTS)]
    if kind == "deal":
        w.app.change_deal_properties(ChangeDealProperties(target, {"product": product}), meta)
    elif kind == "lead":
        w.app.change_lead_properties(ChangeLeadProperties(target, {"product": product}), meta)
    else:
        w.app.change_customer_properties(ChangeCustomerProperties(
            target, {"account_size": ("大型", "小型")[i % 2], **({"product": product} if i % 4 == 0 else {})}), meta)
    w.record([target], meta)


def _change(w: _World, kind: str, i: int, hours: int, owner: str) -> None:
    target_kind = {"forecast": "deal", "close": "deal", "advance": "deal", "lose": "deal", "reopen": "deal", "amount": "deal", "owner": "deal",
                   "lead_step": "lead", "ticket_step": "ticket", "campaign_step": "campaign"}[kind]
    target = w.pick(target_kind, i)
    if target is None:
        return
    meta = w.meta(target, hours, i)
    command = {"advance": _advance_deal,
               "lose": lambda *_: w.app.lose_deal(LoseDeal(target, ("价格", "")[i % 2], COMPETITORS[i % 3]), meta),
               "reopen": lambda *_: w.app.reopen_deal(ReopenDeal(target, "重启",
                                                                 SALES_STAGES[i % 3] if i % 2 else None), meta),
               "amount": lambda *_: w.app.change_amount(ChangeAmount(target, str(50 * i + 1)), meta),
               "owner": lambda *_: w.app.change_owner(ChangeOwner(target, owner), meta),
               "forecast": _forecast_step, "close": _move_close, "lead_step": _lead_step, "ticket_step": _ticket_step, "campaign_step": _campaign_step}[kind]
    created = command(w, target, i, meta)  # the lead step returns the customer and deal a conversion made
    w.record([target, *(created if isinstance(created, tuple) else ())], meta)


def _advance_deal(w: _World, deal_id: UUID, i: int, meta: Meta) -> None:
    stage = w.app.get(Deal, deal_id).stage
    position = SALES_STAGES.index(stage)
    if position == len(SALES_STAGES) - 1 or i % 9 == 0:
        w.app.win_deal(WinDeal(deal_id), meta)
    else:
        w.app.change_stage(ChangeStage(deal_id, SALES_STAGES[min(position + 1 + i % 2, len(SALES_STAGES) - 1)],
                                       "推进"), meta)


def _forecast_step(w: _World, deal_id: UUID, i: int, meta: Meta) -> None:
    """A deal's expected close moves (within the instants asked, some before T0), or its own probability or
    category is set or cleared."""
    if i % 3 == 0:
        day = (T0 + timedelta(days=(i * 7 + meta.occurred_at.day) % 200 - 20)).date()
        w.app.handle(ChangeExpectedClose(deal_id, day, "客户推迟" if i % 2 else ""), meta)
    elif i % 3 == 1:
        w.app.handle(ChangeProbability(deal_id, None if i % 5 == 0 else i * 7 % 101, "评估"), meta)
    else:
        w.app.handle(ChangeForecastCategory(deal_id, CATEGORIES[i % len(CATEGORIES)], "判断"), meta)


def _move_close(w: _World, deal_id: UUID, i: int, meta: Meta) -> None:
    """A deal's expected close moves from where it is (or T0) by −45…+44 days: pushed out of its month or
    quarter, pulled in, or moved within one — what pipeline inspection classifies. Not in KINDS (seeded
    histories elsewhere keep their operations): tests/support/inspection_equivalence.py adds it."""
    current = w.app.get(Deal, deal_id).expected_close or T0.date()
    w.app.handle(ChangeExpectedClose(deal_id, current + timedelta(days=i * 11 % 90 - 45), ("", "客户推迟")[i % 2]),
                 meta)


def _forecast_setting(w: _World, kind: str, i: int, hours: int) -> None:
    """A target (owner's or team's, a month or a quarter of 2026, in CNY or USD), an owner's team, or a sales
    stage's forecast defaults: reference records, each on its own business clock."""
    command: SetTarget | AssignTeam | SetStageForecast
    if kind == "target":
        scope = ("owner", "team")[i % 2]
        name = OWNERS[i // 2 % 2] if scope == "owner" else TEAMS[i // 2 % 2]
        period = f"2026-Q{i % 3 + 1}" if i % 4 == 0 else f"2026-{i % 7 + 2:02d}"
        command = SetTarget(scope, name, period, str(1000 * (i + 1)), CURRENCIES[i % 2])
    elif kind == "team":
        command = AssignTeam(OWNERS[i % 2], TEAMS[(i // 2) % 3])
    else:
        command = SetStageForecast("sales", SALES_STAGES[i % len(SALES_STAGES)], i * 13 % 101,
                                   CATEGORIES[i % 4] or "pipeline")
        if not _follows_the_pipeline(w, command.aggregate_id):
            return
    meta = w.meta(command.aggregate_id, hours, i)
    w.app.handle(command, meta)
    w.record([command.aggregate_id], meta)


def _follows_the_pipeline(w: _World, pipeline_id: UUID) -> bool:
    """Whether the sales pipeline is defined; its clock then starts after its last event. Other parts change
    pipelines outside this world's clocks (bulk_equivalence.FunnelRules defines them, or inserts stages, at
    sync points), so a setting on the world's clock alone could come before them (NotFound, or refused as
    before the pipeline's last event: found by the segments' bulk test on SQLite)."""
    try:
        last = w.app.get(Pipeline, pipeline_id).last_occurred_at
    except NotFound:
        return False
    w.clocks[pipeline_id] = max(w.clocks.get(pipeline_id, last), last)
    return True


def _lead_step(w: _World, lead_id: UUID, i: int, meta: Meta) -> tuple[UUID, ...]:
    lead = w.app.get(Lead, lead_id)
    if i % 7 == 0:
        w.app.disqualify_lead(DisqualifyLead(lead_id, "无预算"), meta)
    elif lead.owner is None or (lead.owner and i % 11 == 0):
        w.app.assign_lead(AssignLead(lead_id, OWNERS[(i + 1) % 2] if lead.owner == OWNERS[i % 2] else OWNERS[i % 2],
                                     "round_robin"), meta)
    elif not lead.contacted or i % 5 == 0:
        w.app.contact_lead(ContactLead(lead_id, "phone", "联系"), meta)
    elif lead.status == "new":
        w.app.qualify_lead(QualifyLead(lead_id, "合格"), meta)
    else:
        customer, deal = w.app.convert_lead(ConvertLead(lead_id, "转化项目", "500", "CNY"), meta)
        w.ids["customer"].append(customer)
        w.ids["deal"].append(deal)
        return customer, deal
    return ()


def _ticket_step(w: _World, ticket_id: UUID, i: int, meta: Meta) -> None:
    ticket = w.app.get(Ticket, ticket_id)
    if ticket.status == "open" and i % 4 == 0:
        w.app.assign_ticket(AssignTicket(ticket_id, OWNERS[i % 2]), meta)
    elif ticket.status in ("open", "waiting_customer"):
        w.app.change_ticket_status(ChangeTicketStatus(ticket_id, "in_progress"), meta)
    elif ticket.status == "in_progress":
        if i % 3 == 0:
            w.app.change_ticket_status(ChangeTicketStatus(ticket_id, "waiting_customer"), meta)
        else:
            w.app.resolve_ticket(ResolveTicket(ticket_id, "已解决"), meta)
    elif not ticket.rated and i % 4:
        w.app.rate_ticket(RateTicket(ticket_id, i % 5 + 1, ""), meta)
    elif i % 2:
        w.app.reopen_ticket(ReopenTicket(ticket_id, "复发"), meta)
    else:
        w.app.close_ticket(CloseTicket(ticket_id), meta)


VARIANTS = [{"key": "A", "name": "原文案", "weight": 1}, {"key": "B", "name": "新文案", "copy": "买一送一", "weight": 2}]


def _variant_of(w: _World, campaign_id: UUID | None, i: int) -> str:
    """One in three responses and leads of a campaign with variants names none; the others one of them."""
    keys = () if campaign_id is None else w.app.get(Campaign, campaign_id).variant_keys
    return ("", *keys)[i % (len(keys) + 1)] if keys else ""


def _variant_step(w: _World, campaign_id: UUID, i: int, meta: Meta) -> None:
    """Variants defined (A/B, then C added), exposures, a variant stopped or declared the winner."""
    campaign = w.app.get(Campaign, campaign_id)
    keys = campaign.variant_keys
    if not keys or (i % 11 == 0 and len(keys) == 2 and campaign.status != "closed"):
        w.app.handle(DefineVariants(campaign_id, [*VARIANTS, {"key": "对照组C", "weight": 1}][:len(keys) + 2],
                                    "测试"), meta)
    elif i % 7 == 3:
        w.app.handle(StopVariant(campaign_id, keys[i % len(keys)], "效果差"), meta)
    elif i % 7 == 4:
        w.app.handle(DeclareWinner(campaign_id, keys[i % len(keys)], "更好"), meta)
    else:
        w.app.handle(RecordExposures(campaign_id, keys[i % len(keys)], i * 37 % 200 + 1), meta)


def _campaign_step(w: _World, campaign_id: UUID, i: int, meta: Meta) -> None:
    status = w.app.get(Campaign, campaign_id).status
    if i % 3 == 2:
        _variant_step(w, campaign_id, i, meta)
    elif status == "planned":
        w.app.launch_campaign(LaunchCampaign(campaign_id), meta)
    elif i % 4 == 0:
        w.app.record_cost(RecordCost(campaign_id, str(10 * i + 1)), meta)
    elif status == "launched" and i % 9:
        _response(w, campaign_id, i, meta)
    elif status == "launched":
        w.app.close_campaign(CloseCampaign(campaign_id), meta)


def _response(w: _World, campaign_id: UUID, i: int, meta: Meta) -> None:
    """A customer's or a lead's response, on their stream (`RecordResponse`), or — one in five — as logs
    before home partitions hold it, on the campaign's (`Campaign.ResponseRecorded`): the same fact to every
    read model. At the later of the campaign's and the respondent's clocks."""
    kind = ("click", "reply", "registration")[i % 3]
    customer, lead = (None, w.pick("lead", i)) if i % 2 else (w.pick("customer", i), None)
    respondent = customer or lead
    if respondent is None:
        return
    meta = Meta(occurred_at=max(meta.occurred_at, w.meta(respondent, 0, i).occurred_at), actor=meta.actor)
    if i % 5 == 1:
        campaign = w.app.get(Campaign, campaign_id)
        campaign.record_response(kind, meta, customer_id=customer, lead_id=lead)
        w.app.save_new(campaign)
        w.record([campaign_id], meta)
    else:
        w.app.record_response(RecordResponse(campaign_id, kind, customer, lead, _variant_of(w, campaign_id, i // 2)),
                              meta)
    w.record([respondent], meta)


def funnel_answers(app: CrmApplication, store: ReadModelStore, as_of: datetime) -> dict[str, Any]:
    """The funnel's answers as of `as_of`, in the installation's time zone (CRM_TIME_ZONE: the tallies' days,
    the cohorts' and periods' calendar) — and the periods in UTC too, asked for explicitly."""
    queries = funnel_queries(store)
    money = RateQueries(store).conversion(app.reporting_currency, as_of)
    answers: dict[Any, Any] = {
        (pipeline, f): queries.report(pipeline, stages_of(app, pipeline), as_of, f, stuck_days=3, money=money)
        for pipeline in ("sales", "marketing", "service") for f in FILTERS}
    for grain, zone in (("week", None), ("month", None), ("month", UTC)):
        answers[("sales", "periods", grain, str(zone))] = queries.periods_by(
            "sales", grain, T0 - timedelta(days=3), as_of, FunnelFilters(), ["owner"], money, zone)
    for pipeline in ("sales", "marketing"):
        for by, cohort in GROUP_BYS:
            answers[(pipeline, by, cohort)] = queries.grouped(pipeline, stages_of(app, pipeline), as_of, by,
                                                              stuck_days=3, cohort=cohort, money=money)
    return {**answers, **ticket_groups(app, store, as_of)}


def ticket_groups(app: CrmApplication, store: ReadModelStore, as_of: datetime) -> dict[Any, Any]:
    """The ticket report grouped by a ticket's, a customer's dimension and properties, and property-filtered."""
    tickets = TicketQueries(store, app.keys.unseal_all_marks)
    answers: dict[Any, Any] = {("tickets", by): tickets.grouped(as_of, by).to_dict()
                               for by in ("owner", "region", "account_size", "product")}
    answers[("tickets", "account_size=大型")] = tickets.report(as_of, [("account_size", "大型")]).to_dict()
    return answers


def grouped_by_key(grouped: Any) -> dict[tuple[Any, ...], Any]:
    """A read model's grouped report as FunnelReplay.grouped answers: group key → report."""
    return {tuple(group.key.values()): group.report for group in grouped.groups}


def replayed_funnel_answers(app: CrmApplication, replayed: ReadModelStore, as_of: datetime) -> dict[str, Any]:
    """The funnels from FunnelReplay; segment members come from the segments replayed to T."""
    replay = FunnelReplay(as_of)
    for _, event in app.read_log():
        replay.handle(event)
    members = {f.segment: segment_members(replayed, f.segment, as_of) for f in FILTERS if f.segment}
    money = conversion_from_log(app, app.reporting_currency, as_of)  # the rates folded from the log, too
    answers: dict[Any, Any] = {
        (pipeline, f): replay.report(pipeline, stages_of(app, pipeline), f, stuck_days=3,
                                     segment_members=members.get(f.segment), money=money)
        for pipeline in ("sales", "marketing", "service") for f in FILTERS}
    for pipeline in ("sales", "marketing"):
        for by, cohort in GROUP_BYS:
            if cohort is None:  # the replay groups by dimensions only
                answers[(pipeline, by, cohort)] = replay.grouped(pipeline, stages_of(app, pipeline), list(by),
                                                                 stuck_days=3, money=money)
    return answers


FILTERS = (FunnelFilters(), FunnelFilters(owner=OWNERS[0]), FunnelFilters(region=REGIONS[1]),
           FunnelFilters(segment="potential"), FunnelFilters(segment="ordinary"),
           FunnelFilters(properties=(("product", "GTX"),)), FunnelFilters(properties=(("account_size", "大型"),)))
GROUP_BYS = ((("owner",), None), (("product",), None), (("account_size", "region"), None), ((), "month"),
             (("product",), "quarter"), ((), "day"))


STUCK_THRESHOLDS_DAYS = (0.0, 3.0, 2 ** 37 / 86_400e6)
"""Stuck thresholds for `check_flat_as_of`: none, the reports' 3 days, and a band's edge (`rows.length_band`)."""


def check_flat_as_of(app: CrmApplication, store: ReadModelStore, as_of: datetime) -> None:
    """The as-of paths issue 14 made flat equal the ones they replaced, kept as references: the funnel's stuck
    items from the candidates found by length band against the scan of every stay begun by then, and the tier
    counts from the tallies against the scan of the intervals at the instant."""
    queries, t = funnel_queries(store), micros(as_of)
    for pipeline in ("sales", "marketing", "service"):
        stages = stages_of(app, pipeline)
        for days in STUCK_THRESHOLDS_DAYS:
            threshold = int(days * 86_400e6)
            flat = queries._stuck(pipeline, stages, t, FunnelFilters(), threshold)
            scanned = queries._stuck(pipeline, stages, t, FunnelFilters(), threshold, scanned=True)
            assert sorted(flat, key=str) == sorted(scanned, key=str), f"stuck of {pipeline} differs at {as_of}"
        assert tallied_facts(store, pipeline, stages, t, queries.zone) == tallied_facts(
            store, pipeline, stages, t, queries.zone, summed=False), f"{pipeline}'s funnel_sums differ at {as_of}"
    segments = SegmentQueries(store)
    assert segments.tier_counts(as_of) == segments.tier_counts(as_of, scanned=True), \
        f"tier counts from the tallies differ from the intervals' at {as_of}"


def check_funnel_sums(store: ReadModelStore, complete: bool = True) -> None:
    """Every `funnel_sums` row whose `n` is its partitions' is their sum; with `complete` (any path but workers
    applying partitions at once, where a worker may close a period another adds to), every closed day and month
    (before its pipeline's last) has one, and no other has: what the bulk fold writes too."""
    parts: dict[tuple[str, str, int], tuple[int, dict[str, int]]] = {}
    for pipeline, grain, period, n, deltas in store.query(
            "SELECT pipeline, grain, period, n, deltas FROM funnel_tallies ORDER BY pipeline, grain, period, part"):
        count, total = parts.get((pipeline, grain, period), (0, {}))
        merge(total, orjson.loads(deltas))
        parts[(pipeline, grain, period)] = (count + n, total)
    last: dict[tuple[str, str], int] = {}
    for pipeline, grain, period in parts:
        last[(pipeline, grain)] = max(period, last.get((pipeline, grain), period))
    for (pipeline, grain, period), (n, deltas) in list(parts.items()):  # a year: its months' (closed or not)
        if grain == "m":
            count, total = parts.get((pipeline, "y", year_of(period)), (0, {}))
            merge(total, deltas)
            parts[(pipeline, "y", year_of(period))] = (count + n, total)
    for pipeline, grain in list(last):
        if grain == "m":
            last[(pipeline, "y")] = year_of(last[(pipeline, "m")])
    sums = {(pipeline, grain, period): (n, orjson.loads(deltas)) for pipeline, grain, period, n, deltas in store.query(
        "SELECT pipeline, grain, period, n, deltas FROM funnel_sums")}
    for key, (n, deltas) in sums.items():
        if n == parts[key][0]:
            assert deltas == parts[key][1], f"funnel_sums {key} is not its partitions' sum"
    if complete:
        closed = {key for key in parts if key[2] < last[key[:2]]}
        assert set(sums) == closed, f"funnel_sums of {sorted(set(sums) ^ closed)[:5]}: missing or of an open period"
        assert all(sums[key][0] == parts[key][0] for key in closed), "a funnel_sums row misses a change"


def check_equivalence(app: CrmApplication, live: ReadModelStore, days: list[int], batch: int) -> None:
    """Incremental (caught up in random batches) == replay to T == full rebuild of the same store."""
    models = [configured(model) for model in READ_MODELS.values()]
    projector = Projector(app, live, models)
    projector.catch_up(limit=batch)
    instants = [T0 + timedelta(days=day, hours=day % 7) for day in days]
    incremental = {as_of: (funnel_answers(app, live, as_of), summaries(app, live, as_of)) for as_of in instants}
    check_funnel_sums(live)
    for as_of in instants:
        check_flat_as_of(app, live, as_of)
        funnels, answers = incremental[as_of]
        replayed = replay_until(app, models, as_of)
        assert funnels == funnel_answers(app, replayed, as_of), f"funnel: replay_until differs at {as_of}"
        folded = replayed_funnel_answers(app, replayed, as_of)
        assert {key: grouped_by_key(answer) if len(key) == 3 else answer for key, answer in funnels.items()
                if key in folded} == folded, f"funnel: FunnelReplay differs at {as_of}"
        check_flat_as_of(app, replayed, as_of)
        check_funnel_sums(replayed)
        replayed_answers = summaries(app, replayed, as_of)
        for name in answers:
            assert answers[name] == replayed_answers[name], f"{name}: replay_until differs at {as_of}"
        replayed.close()
    projector.rebuild()
    check_funnel_sums(live)
    for as_of in instants:
        check_flat_as_of(app, live, as_of)
        funnels, answers = incremental[as_of]
        assert funnels == funnel_answers(app, live, as_of), f"funnel: rebuild differs at {as_of}"
        assert answers == summaries(app, live, as_of), f"rebuild differs at {as_of}"


def run_example(database: Database, ops: list[tuple[str, int, int, bool]], days: list[int], batch: int) -> None:
    """One property example on a fresh, empty database: apply the history, then check equivalence."""
    app = CrmApplication(database)
    app.ensure_default_pipelines(Meta(occurred_at=PIPELINES_DEFINED))
    live = ReadModelStore(database)
    follower = Projector(app, live, [configured(model) for model in READ_MODELS.values()])
    apply_history(app, ops, on_sync=lambda: follower.catch_up(limit=batch))
    check_equivalence(app, live, days, batch)
    live.close()
    app.close()


# --- partitioned projection: the log spread over partitions, applied in any interleaving ------------------

PARTS = 3  # partitions the histories are spread over (the 64 home partitions, mapped to 3)


def sealed_log(app: CrmApplication) -> list[Any]:
    """Every event in log order, personal data sealed (as the follower and a consumer decode them)."""
    events: list[Any] = []
    start = 1
    while True:
        notifications = app.recorder.select_notifications(start, 2000)
        events.extend(app.mapper.to_sealed_events(notifications))
        if len(notifications) < 2000:
            return events
        start = notifications[-1].id + 1


def partition_streams(events: list[Any], parts: int = PARTS) -> list[list[Delivery]]:
    """Each partition's deliveries, as a relay publishes them: an event goes to its record's home partition
    (`partition_of`, mapped to `parts`), a reference event to every partition. A record's home is its
    family's: a deal's and a ticket's are their customer's, a converted customer's its lead's — what new
    ids follow by construction once made `in_partition` of their parent; followed here from the events, so
    that histories of ids made before that rule are spread the same way."""
    family: dict[Any, Any] = {}  # record id → the id whose partition is its home
    streams: list[list[Delivery]] = [[] for _ in range(parts)]
    for event in events:
        if isinstance(event, Lead.Converted):
            family[event.customer_id] = family[event.deal_id] = family.get(event.originator_id, event.originator_id)
        elif isinstance(event, (Deal.Opened, Ticket.Opened)):
            family[event.originator_id] = family.get(event.customer_id, event.customer_id)
        targets = range(parts) if is_reference(aggregate_kind(event)) else [
            partition_of(family.setdefault(event.originator_id, event.originator_id)) % parts]
        for p in targets:
            streams[p].append(Delivery(p, len(streams[p]), event))
    return streams


def interleaved(streams: list[list[Delivery]], rng: random.Random, max_batch: int) -> Iterator[list[Delivery]]:
    """Batches of random sizes taking the partitions' deliveries in a random interleaving, each partition in
    order; now and then a partition is delivered again from a few events back (a consumer restarted)."""
    cursors = [0] * len(streams)
    while open_ := [p for p, stream in enumerate(streams) if cursors[p] < len(stream)]:
        batch = []
        for _ in range(rng.randint(1, max_batch)):
            if not open_:
                break
            p = rng.choice(open_)
            batch.append(streams[p][cursors[p]])
            cursors[p] += 1
            open_ = [q for q in open_ if cursors[q] < len(streams[q])]
        yield batch
        if rng.random() < 0.1:
            p = rng.randrange(len(streams))
            cursors[p] = max(0, cursors[p] - rng.randint(1, 5))


def all_read_models() -> list[ReadModel]:
    return [configured(model) for model in READ_MODELS.values()]


def apply_concurrently(database: Database, streams: list[list[Delivery]], rng: random.Random,
                       max_batch: int, models: Callable[[], list[ReadModel]] = all_read_models) -> int:
    """One worker (thread, own connection) per partition, each applying its partition in random batches;
    returns how many batches had to be done again after meeting another worker's."""
    sizes = [[rng.randint(1, max_batch) for _ in stream] for stream in streams]
    projectors = [PartitionedProjector(ReadModelStore(database), models()) for _ in streams]

    def work(p: int) -> None:
        stream, done = streams[p], 0
        for size in sizes[p]:
            if done >= len(stream):
                return
            projectors[p].apply(stream[done:done + size])
            done += size

    with ThreadPoolExecutor(len(streams)) as pool:
        for future in [pool.submit(work, p) for p in range(len(streams))]:
            future.result()
    for projector in projectors:
        projector.store.close()
    return sum(projector.retries for projector in projectors)


def check_partitioned_equivalence(app: CrmApplication, live: ReadModelStore, days: list[int],
                                  concurrent: bool = False) -> None:
    """The partitioned read models in `live` == a rebuild by the log follower == replay to T."""
    models = [configured(model) for model in READ_MODELS.values()]
    rebuilt = ReadModelStore(database_from_url("memory://"))
    Projector(app, rebuilt, models).catch_up()
    check_funnel_sums(live, complete=not concurrent)
    check_funnel_sums(rebuilt)
    for as_of in [T0 + timedelta(days=day, hours=day % 7) for day in days]:
        check_flat_as_of(app, live, as_of)
        funnels, answers = funnel_answers(app, live, as_of), summaries(app, live, as_of)
        assert funnels == funnel_answers(app, rebuilt, as_of), f"funnel: rebuild differs at {as_of}"
        for name, answer in summaries(app, rebuilt, as_of).items():
            assert answers[name] == answer, f"{name}: rebuild differs at {as_of}"
        replayed = replay_until(app, models, as_of)
        assert funnels == funnel_answers(app, replayed, as_of), f"funnel: replay_until differs at {as_of}"
        assert answers == summaries(app, replayed, as_of), f"replay_until differs at {as_of}"
        replayed.close()
    rebuilt.close()


def run_partitioned_example(database: Database, ops: list[tuple[str, int, int, bool]], days: list[int], batch: int,
                            seed: int, concurrent: bool = False) -> int:
    """One property example on a fresh database: apply the history, spread its log over PARTS partitions,
    project them in a random interleaving (or by concurrent workers), check equivalence; returns retries."""
    app = CrmApplication(database)
    app.ensure_default_pipelines(Meta(occurred_at=PIPELINES_DEFINED))
    apply_history(app, ops, on_sync=lambda: None)
    streams, rng = partition_streams(sealed_log(app)), random.Random(seed)
    live = ReadModelStore(database)
    projector = PartitionedProjector(live, [configured(model) for model in READ_MODELS.values()])
    if concurrent:
        retries = apply_concurrently(database, streams, rng, batch)
    else:
        for deliveries in interleaved(streams, rng, batch):
            projector.apply(deliveries)
        retries = 0
    assert projector.offsets() == {(name, p): len(stream) - 1 for name in READ_MODELS
                                   for p, stream in enumerate(streams)}
    check_partitioned_equivalence(app, live, days, concurrent)
    live.close()
    app.close()
    return retries


# --- time zones: the read models built in a business's zone (CRM_TIME_ZONE) --------------------------------

ZONES = ("Asia/Shanghai", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")
"""Zones whose days start at other UTC hours: +08:00 without DST, −05:00/−04:00 (DST from 8 March 2026, within
the histories' weeks from 1 March), +05:30, and +10:30/+11:00 (a half-hour DST)."""
zones = st.sampled_from(ZONES)


@contextmanager
def time_zone(name: str) -> Iterator[None]:
    """CRM_TIME_ZONE set to `name` meanwhile (read models made by `configured`, queries, summaries use it)."""
    with patch.dict(os.environ, {"CRM_TIME_ZONE": name}):
        yield
