"""Random histories of A/B tests for the variants read model's property tests: two campaigns with variants,
exposures, responses and leads naming a variant (or none), leads taken through every step to a won deal,
deals lost, reopened and re-priced in three currencies, variants added, stopped and declared winners, rates.

The general histories (`tests.support.equivalence`, whose checks cover every read model, this one included)
seldom take a variant's lead as far as a won deal; these do in many examples, and their check asks the
variants read model alone, at every step, so that an example takes seconds. Refused steps are skipped, as a
user would see them refused.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from domain.base import Meta
from domain.campaign import Campaign
from domain.deal import Deal
from domain.errors import DomainError
from domain.lead import Lead
from services.application import CrmApplication
from services.commands import (AssignLead, CaptureLead, ChangeAmount, ContactLead, ConvertLead, LaunchCampaign,
                               LoseDeal, PlanCampaign, QualifyLead, RecordExchangeRate, RecordResponse,
                               RegisterCustomer, ReopenDeal, WinDeal)
from services.commands.ab_tests import DeclareWinner, DefineVariants, RecordExposures, StopVariant
from projections.rates import RateQueries, RatesReadModel
from projections.variants import STEPS, VariantQueries, VariantsReadModel
from services.projection_runtime.projector import Projector
from services.projection_runtime.replay import replay_until
from services.settings import Database
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0
from tests.support.equivalence import PIPELINES_DEFINED, _World

AB = [{"key": "A", "name": "原文案", "copy": "春季八折", "weight": 1},
      {"key": "B", "name": "新文案", "copy": "买一送一", "channel": "wechat", "weight": 2}]
KINDS = ("expose",) * 3 + ("respond",) * 4 + ("lead",) * 5 + ("lead_step",) * 12 + ("deal_end",) * 4 \
    + ("stop", "winner", "redefine", "rate")
CURRENCIES = ("CNY", "USD", "EUR")

variant_operations = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 40), st.integers(0, 10 * 24),
                                        st.booleans()), min_size=20, max_size=80)


def apply_variant_history(app: CrmApplication, ops: list[tuple[str, int, int, bool]],
                          sync: Callable[[], None]) -> None:
    """Two campaigns with variants A and B, launched; then the operations, syncing where asked."""
    w = _World(app)
    for index in range(2):
        meta = w.meta(None, 0, index)
        campaign = app.plan_campaign(PlanCampaign(f"活动{index}", "event", "1000", currency=CURRENCIES[index]), meta)
        app.define_variants(DefineVariants(campaign, AB, "首轮"), meta)
        app.launch_campaign(LaunchCampaign(campaign), meta)
        w.ids["campaign"].append(campaign)
        w.record([campaign], meta)
    for kind, i, hours, then_sync in ops:
        try:
            _step(w, kind, i, hours)
        except DomainError:
            pass
        if then_sync:
            sync()


def _defined(w: _World, campaign: UUID) -> list[dict[str, object]]:
    return list(w.app.get(Campaign, campaign).variants.values())


def _keys(w: _World, campaign: UUID) -> tuple[str, ...]:
    return w.app.get(Campaign, campaign).variant_keys


def _step(w: _World, kind: str, i: int, hours: int) -> None:  # noqa: C901 - one branch per operation
    app, campaign = w.app, w.pick("campaign", i)
    assert campaign is not None
    keys = _keys(w, campaign)
    variant = ("", *keys)[i % (len(keys) + 1)]
    if kind == "stop" and i % 2:
        return  # half as many stops: a campaign with every variant stopped takes nothing more
    if kind in ("expose", "stop", "winner", "redefine"):
        meta = w.meta(campaign, hours, i)
        key = keys[i % len(keys)]
        command = {"expose": RecordExposures(campaign, key, i * 37 % 300 + 20),
                   "stop": StopVariant(campaign, key, "效果差"), "winner": DeclareWinner(campaign, key, "更好"),
                   "redefine": DefineVariants(campaign, [*_defined(w, campaign),
                                                         {"key": f"C{len(keys)}", "weight": i % 3 + 1}], "加一组")}[kind]
        app.handle(command, meta)
        w.record([campaign], meta)
    elif kind == "respond":
        lead = w.pick("lead", i) if i % 3 else None
        customer = None if lead else app.register_customer(RegisterCustomer(f"客户{i}"), w.meta(None, hours, i))
        respondent = lead or customer
        meta = w.meta(respondent, hours, i)
        app.record_response(RecordResponse(campaign, "click", None if lead else customer, lead, variant), meta)
        w.record([respondent], meta)
    elif kind == "lead":
        meta = w.meta(None, hours, i)
        lead = app.capture_lead(CaptureLead(f"线索{i}", campaign_id=campaign, variant=variant), meta)
        w.ids["lead"].append(lead)
        w.record([lead], meta)
    elif kind == "lead_step":
        _lead_step(w, i, hours)
    elif kind == "deal_end":
        _deal_end(w, i, hours)
    else:
        day = (T0 + timedelta(days=(i * 5 + hours) % 120 - 5)).date()
        app.record_exchange_rate(RecordExchangeRate(CURRENCIES[1 + i % 2], ("7.1", "7.8", "6.9")[i % 3], day),
                                 w.meta(None, hours, i))


def _lead_step(w: _World, i: int, hours: int) -> None:
    """The lead one step on: assigned, contacted, qualified, converted (a deal in one of three currencies)."""
    lead_id = w.pick("lead", i // 6)  # a few leads at a time: four steps take one to a deal
    if lead_id is None:
        return
    lead, meta = w.app.get(Lead, lead_id), w.meta(lead_id, hours, i)
    if lead.owner is None:
        w.app.assign_lead(AssignLead(lead_id, "李娜"), meta)
    elif not lead.contacted:
        w.app.contact_lead(ContactLead(lead_id, "phone", "联系"), meta)
    elif lead.status == "new":
        w.app.qualify_lead(QualifyLead(lead_id, "合格"), meta)
    else:
        customer, deal = w.app.convert_lead(ConvertLead(lead_id, "项目", str(100 * (i + 1)), CURRENCIES[i % 3]), meta)
        w.ids["deal"].append(deal)
        w.record([customer, deal], meta)
    w.record([lead_id], meta)


def _deal_end(w: _World, i: int, hours: int) -> None:
    deal_id = w.pick("deal", i // 4)
    if deal_id is None:
        return
    deal, meta = w.app.get(Deal, deal_id), w.meta(deal_id, hours, i)
    if deal.status == "open" and i % 4:
        w.app.win_deal(WinDeal(deal_id), meta) if i % 3 else w.app.lose_deal(LoseDeal(deal_id, "价格"), meta)
    elif deal.status == "open":
        w.app.change_amount(ChangeAmount(deal_id, str(70 * i + 1)), meta)
    elif i % 3 == 0:  # most closed deals stay closed
        w.app.reopen_deal(ReopenDeal(deal_id, "重启"), meta)
    w.record([deal_id], meta)


def variant_answers(app: CrmApplication, store: ReadModelStore, as_of: datetime) -> dict[str, Any]:
    """Every campaign's test as of `as_of` at every step, with money at the rates in force then."""
    queries, money = VariantQueries(store), RateQueries(store).conversion(app.reporting_currency, as_of)
    return {(campaign, step): queries.report(campaign, as_of, step, money=money).to_dict()
            for campaign in queries.campaigns(as_of) for step in STEPS[1:]}


def run_variant_example(database: Database, ops: list[tuple[str, int, int, bool]], days: list[int],
                        batch: int) -> None:
    """One property example on a fresh database: the variants read model (and the rates it converts with)
    caught up in random batches == replayed to each instant == rebuilt from zero."""
    app = CrmApplication(database)
    app.ensure_default_pipelines(Meta(occurred_at=PIPELINES_DEFINED))
    live = ReadModelStore(database)
    models = [VariantsReadModel(), RatesReadModel()]
    follower = Projector(app, live, models)
    apply_variant_history(app, ops, lambda: follower.catch_up(limit=batch))
    follower.catch_up(limit=batch)
    instants = [T0 + timedelta(days=day, hours=day % 7) for day in days]
    incremental = {as_of: variant_answers(app, live, as_of) for as_of in instants}
    for as_of in instants:
        replayed = replay_until(app, models, as_of)
        assert incremental[as_of] == variant_answers(app, replayed, as_of), f"replay_until differs at {as_of}"
        replayed.close()
    follower.rebuild()
    for as_of in instants:
        assert incremental[as_of] == variant_answers(app, live, as_of), f"rebuild differs at {as_of}"
    live.close()
    app.close()
