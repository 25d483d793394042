"""Random histories rich in campaign touches and wins, for the attribution read model's property tests.

The shared histories (`tests.support.equivalence.operations`) mix every kind of record, so few of their won
deals have more than one touch; these weight campaign steps (launch, cost, responses), leads taken to
conversion and deals taken to a win, so that most examples credit several touches under every model. The
operations are `equivalence`'s own (and three of variants, `apply_marketing_history`); `check_attribution_
equivalence` holds the attribution read model equal incremental = rebuild = replay (the shared histories hold
it, with every other read model, through the registry's summaries); `check_credits_sum` adds the sum-to-value
property.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from hypothesis import strategies as st

from domain.attribution import MODELS
from domain.base import Meta
from projections.attribution import AttributionQueries
from projections.campaigns import CampaignQueries
from projections.rates import RateQueries
from services.application import CrmApplication
from services.projection_runtime.model_settings import configured
from services.projection_runtime.projector import Projector
from services.projection_runtime.registry import READ_MODELS, SUMMARIES
from services.projection_runtime.replay import replay_until
from services.settings import Database
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0, at
from domain.errors import DomainError
from services.application import AlreadyExists
from services.commands import (CaptureLead, LaunchCampaign, OpenDeal, PlanCampaign, RecordCost, RecordResponse,
                               RegisterCustomer, WinDeal)
from services.commands.ab_tests import DefineVariants
from tests.support.equivalence import PIPELINES_DEFINED, SEED_OPERATIONS, _apply, _World

KINDS = ("campaign",) * 2 + ("campaign_step",) * 12 + ("lead",) * 2 + ("lead_step",) * 6 + ("customer",) * 2 \
    + ("deal",) * 4 + ("advance",) * 14 + ("amount", "lose", "reopen", "rate", "convert") \
    + ("variants", "variant_lead") + ("variant_response",) * 4
# A journey every example starts with (after `equivalence.SEED_OPERATIONS`: campaign 0, customers 1 and 2,
# leads 3 and 4), at random hours: two more campaigns, all three launched; customer 1 answers campaigns 2, 0
# (on the campaign's stream), 1 and 2; lead 4 (captured through campaign 0) answers 2 and 1 and is assigned,
# contacted, qualified and converted; costs on each campaign; customer 1's deal and the conversion's are won.
# Campaigns 0 and 1 define variants A and B, and customer 1 and lead 4 answer variants (`_variant_step`).
# Indexes pick as `equivalence._apply` does (campaign i % 3; even i: a customer's response, odd: a lead's).
JOURNEY = [("campaign", 1), ("campaign", 2), ("campaign_step", 0), ("campaign_step", 1), ("campaign_step", 2),
           ("variants", 0), ("variants", 1), ("variant_response", 4), ("variant_response", 3),
           ("variant_response", 6), ("campaign_step", 2), ("campaign_step", 5), ("campaign_step", 6), ("campaign_step", 7),
           ("campaign_step", 4), ("campaign_step", 10), ("campaign_step", 8), ("lead_step", 1), ("lead_step", 1),
           ("campaign_step", 14), ("lead_step", 1), ("lead_step", 1), ("campaign_step", 12), ("deal", 0),
           ("advance", 0), ("advance", 9)]
journeys = st.lists(st.integers(0, 96), min_size=len(JOURNEY), max_size=len(JOURNEY)).map(
    lambda hours: [(kind, index, hour, False) for (kind, index), hour in zip(JOURNEY, hours)])
marketing_operations = st.tuples(journeys, st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 50), st.integers(0, 20 * 24), st.booleans()),
    min_size=20, max_size=100,
)).map(lambda parts: SEED_OPERATIONS + parts[0] + parts[1])
MODELS_USED = ("attribution", "rates")  # rates: money is converted at the rates in force at T
half_lives = st.sampled_from([7.0, 0.25, 30.0, 2.5])


def apply_marketing_history(app: CrmApplication, ops: list[tuple[str, int, int, bool]],
                            on_sync: Callable[[], None]) -> None:
    """`equivalence.apply_history`, with three more operations: a campaign defines variants A and B; a
    customer or a lead answers a variant (A, B or none); a lead is captured from a variant."""
    world = _World(app)
    for kind, index, hours, sync in ops:
        try:
            (_variant_step if kind.startswith("variant") else _apply)(world, kind, index, hours)
        except (DomainError, AlreadyExists):
            pass
        if sync:
            on_sync()


def _variant_step(w: _World, kind: str, i: int, hours: int) -> None:
    campaign = w.pick("campaign", i)
    if campaign is None:
        return
    if kind == "variants":
        meta = w.meta(campaign, hours, i)
        w.app.handle(DefineVariants(campaign, [{"key": "A", "name": "原版", "weight": 1},
                                               {"key": "B", "name": "新文案", "copy": "限时优惠", "weight": 1}]), meta)
        w.record([campaign], meta)
        return
    variant = ("A", "B", "")[i % 3]
    if kind == "variant_lead":
        meta = w.meta(None, hours, i)
        w.ids["lead"].append(w.app.capture_lead(CaptureLead(f"线索{i}", "华东", "零售", "event", campaign_id=campaign,
                                                            variant=variant), meta))
        w.record(w.ids["lead"][-1:], meta)
        return
    customer, lead = (None, w.pick("lead", i)) if i % 2 else (w.pick("customer", i), None)
    respondent = customer or lead
    if respondent is None:
        return
    meta = Meta(occurred_at=max(w.meta(campaign, hours, i).occurred_at, w.meta(respondent, 0, i).occurred_at),
                actor="李娜")
    w.app.record_response(RecordResponse(campaign, ("click", "reply")[i % 2], customer, lead, variant=variant), meta)
    w.record([respondent], meta)


def check_credits_sum(app: CrmApplication, store: ReadModelStore, days: list[int], half_life: float) -> int:
    """Under every model, each won deal's credits are whole non-negative cents summing to its value, and the
    rows of each axis sum to the won revenue; returns how many won deals had 2+ touches by their win."""
    spread = 0
    for as_of in (T0 + timedelta(days=day, hours=day % 7) for day in days):
        money = RateQueries(store).conversion(app.reporting_currency, as_of)
        queries = AttributionQueries(store)
        for model in MODELS:
            for deal, shares in queries.per_deal(as_of, model, half_life, money):
                assert sum(shares.values()) == deal.value_cents, (model, deal)
                assert all(cents >= 0 for cents in shares.values()), (model, deal)
                spread += model == "linear" and sum(touch.at <= deal.won_at for touch in deal.touches) > 1
            for by in ("campaign", "channel", "variant"):
                report = queries.credits(as_of, model, by, half_life, money)
                assert sum(row["credited_cents"] for row in report["rows"]) == report["won_revenue_cents"]
    return spread


def check_attribution_equivalence(app: CrmApplication, live: ReadModelStore, days: list[int], batch: int) -> None:
    """The attribution summary (every model, time decay at two half-lives, the cohorts: the registry's) caught
    up in random batches == replayed to T == rebuilt, as `equivalence.check_equivalence` holds it of every read
    model — here of the attribution and rates read models only, so that an example takes seconds."""
    models = [configured(READ_MODELS[name]) for name in MODELS_USED]
    projector = Projector(app, live, models)
    projector.catch_up(limit=batch)
    instants = [T0 + timedelta(days=day, hours=day % 7) for day in days]
    incremental = {as_of: SUMMARIES["attribution"](app, live, as_of) for as_of in instants}
    for as_of in instants:
        replayed = replay_until(app, models, as_of)
        assert incremental[as_of] == SUMMARIES["attribution"](app, replayed, as_of), f"replay differs at {as_of}"
        replayed.close()
    projector.rebuild()
    for as_of in instants:
        assert incremental[as_of] == SUMMARIES["attribution"](app, live, as_of), f"rebuild differs at {as_of}"


def check_as_the_campaigns_report(app: CrmApplication, store: ReadModelStore, days: list[int]) -> None:
    """First and last touch credit each campaign what the campaigns report's attribution does (an independent
    computation: `projections.campaigns.facts_report` over its own tables, `domain.marketing`'s rules)."""
    Projector(app, store, [configured(READ_MODELS["campaigns"])]).catch_up()
    for as_of in (T0 + timedelta(days=day, hours=day % 7) for day in days):
        money = RateQueries(store).conversion(app.reporting_currency, as_of)
        report = CampaignQueries(store).report(as_of, None, money).to_dict()
        for model in ("first_touch", "last_touch"):
            theirs = {str(row["campaign_id"]) if row["campaign_id"] else None: row[f"{model}_revenue_cents"]
                      for row in report["attribution"] if row[f"{model}_revenue_cents"]}
            ours = {row["campaign_id"]: row["credited_cents"]
                    for row in AttributionQueries(store).credits(as_of, model, money=money)["rows"] if row["credited_cents"]}
            assert ours == theirs, (model, as_of, ours, theirs)


def run_attribution_example(database: Database, ops: list, days: list[int], batch: int, half_life: float) -> int:
    """A marketing-rich history, then incremental == replay == rebuild and the sum-to-value property."""
    app = CrmApplication(database)
    app.ensure_default_pipelines(Meta(occurred_at=PIPELINES_DEFINED))
    live = ReadModelStore(database)
    follower = Projector(app, live, [configured(READ_MODELS[name]) for name in (*MODELS_USED, "campaigns")])
    apply_marketing_history(app, ops, on_sync=lambda: follower.catch_up(limit=batch))
    check_attribution_equivalence(app, live, days, batch)
    spread = check_credits_sum(app, live, [*days, 400], half_life)
    check_as_the_campaigns_report(app, live, [*days, 400])
    live.close()
    app.close()
    return spread


def two_touch_journey(crm: CrmApplication) -> None:
    """The gateways' tests' history (days after tests.conftest.T0): 客户, registered through event on day 0,
    answered 展会 (day 1) and 邮件 (day 3) and won 1 000 on day 5; 展会 cost 600 on day 0."""
    fair = crm.plan_campaign(PlanCampaign("展会", "event", "10000"), at(-1))
    mail = crm.plan_campaign(PlanCampaign("邮件", "email", "10000"), at(-1))
    for campaign in (fair, mail):
        crm.launch_campaign(LaunchCampaign(campaign), at(0))
    crm.record_cost(RecordCost(fair, "600"), at(0))
    customer = crm.register_customer(RegisterCustomer("客户", channel="event"), at(0))
    crm.record_response(RecordResponse(fair, "click", customer_id=customer), at(1))
    crm.record_response(RecordResponse(mail, "reply", customer_id=customer), at(3))
    crm.win_deal(WinDeal(crm.open_deal(OpenDeal(customer, "一期", "1000", owner="李娜"), at(4))), at(5))
