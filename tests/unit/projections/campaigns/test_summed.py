"""The report summed from tallies equals the report derived from every fact, at any instant, for random
histories (and each customer's value, now from its deals alone, equals theirs from every fact); and the
tallies and steps the handlers keep do not depend on how the log was batched, and equal
those `derive` computes from the fact tables alone."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import orjson
from hypothesis import HealthCheck, given, settings

from domain.exchange_rates import Conversion, RateInForce
from domain.marketing import lifetime_values
from projections.campaigns import CampaignQueries, CampaignsReadModel
from projections.campaigns.facts_report import facts_report, load_facts
from projections.campaigns.summed import summed_report
from projections.campaigns.summed_tables import STEPS, TALLIES, derive
from projections.tables import micros
from services.application import CrmApplication
from services.commands import (AssignLead, CaptureLead, ContactLead, ConvertLead, LaunchCampaign, OpenDeal, PlanCampaign,
                               QualifyLead, RecordResponse, ReopenDeal, WinDeal)
from services.projection_runtime.projector import Projector
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0, at
from tests.support.equivalence import apply_history, batch_sizes, instants, operations

# Whole-number rates: converting each won deal (the reference) and each sum (the tallies) then agree to
# the cent; with fractional rates they may differ by half a cent per deal (see summed.py).
WHOLE_RATES = Conversion("CNY", {"USD": RateInForce(Decimal(7), date(2026, 1, 1)),
                                 "BRL": RateInForce(Decimal(2), date(2026, 1, 1))})


def _tables(store: ReadModelStore) -> tuple[list[tuple[object, ...]], ...]:
    return tuple(sorted((*row[:-1], orjson.loads(row[-1])) for row in store.query(f"SELECT * FROM {table.name}"))
                 for table in (STEPS, TALLIES))


def _derived(store: ReadModelStore) -> tuple[list[tuple[object, ...]], ...]:
    steps, tallies = derive(store.query)
    return sorted(tuple(row.values()) for row in steps), sorted(tuple(row.values()) for row in tallies)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, days=instants, batch=batch_sizes)
def test_summed_report_equals_the_report_derived_from_every_fact(ops: list, days: list[int], batch: int) -> None:
    app = CrmApplication(database_from_url("memory://"))
    app.ensure_default_pipelines()
    live, rebuilt = (ReadModelStore(database_from_url("memory://")) for _ in range(2))
    projector = Projector(app, live, [CampaignsReadModel()])
    apply_history(app, ops, on_sync=lambda: projector.catch_up(limit=batch))
    projector.catch_up(limit=batch)
    Projector(app, rebuilt, [CampaignsReadModel()]).catch_up()
    assert _tables(live) == _tables(rebuilt) == _derived(rebuilt)
    for day in [*days, -400, 400]:
        as_of = T0 + timedelta(days=day, hours=7)
        for money in (Conversion(), WHOLE_RATES, Conversion("USD")):
            expected = facts_report(as_of, load_facts(live, micros(as_of), money), None, money)
            assert summed_report(live, as_of, None, money) == expected, (day, money)
            channel = "event"
            assert summed_report(live, as_of, channel, money) == facts_report(
                as_of, load_facts(live, micros(as_of), money), channel, money)
            values = {str(cid): value for cid, value in CampaignQueries(live).customer_values(as_of, money).items()}
            assert values == lifetime_values(load_facts(live, micros(as_of), money).wins)
    for store in (live, rebuilt):
        store.close()
    app.close()


def test_late_touches_and_a_reopened_win_credit_as_every_fact_says(crm: CrmApplication) -> None:
    """A touch recorded after the win it preceded moves the credit; a touch after a win credits nothing; a
    reopened deal won again is credited by the touches before its new win; a campaign planned later counts
    as none before then. Each aggregate's clock runs forward; the log's order does not."""
    a = crm.plan_campaign(PlanCampaign("甲", "event", "1000"), at(0))
    b = crm.plan_campaign(PlanCampaign("乙", "search_ads", "1000", currency="USD"), at(0))
    for campaign in (a, b):
        crm.launch_campaign(LaunchCampaign(campaign), at(0))
    lead = crm.capture_lead(CaptureLead("王五", "华东", "制造业", "event", campaign_id=a), at(1))
    crm.assign_lead(AssignLead(lead, "李娜", "manual"), at(1))
    crm.contact_lead(ContactLead(lead, "phone", ""), at(1))
    crm.record_response(RecordResponse(b, "click", lead_id=lead), at(2))
    crm.qualify_lead(QualifyLead(lead, ""), at(2))
    customer, deal = crm.convert_lead(ConvertLead(lead, "采购", "1000", "USD"), at(3))
    crm.win_deal(WinDeal(deal), at(5))
    crm.reopen_deal(ReopenDeal(deal, "重新谈判"), at(7))
    crm.win_deal(WinDeal(deal), at(8))
    crm.record_response(RecordResponse(a, "reply", customer), at(4))  # recorded after the wins it precedes
    crm.record_response(RecordResponse(b, "reply", customer), at(6))  # after the first win, before the second
    c = crm.plan_campaign(PlanCampaign("丙", "event", "1"), at(9))
    crm.launch_campaign(LaunchCampaign(c), at(9))
    second = crm.open_deal(OpenDeal(customer, "增购", "300", owner="李娜", campaign_id=c), at(9))
    crm.record_response(RecordResponse(c, "reply", customer), at(9))
    crm.win_deal(WinDeal(second), at(10))
    stores = []
    for batch in (1, 1000):
        store = ReadModelStore(database_from_url("memory://"))
        Projector(crm, store, [CampaignsReadModel()]).catch_up(limit=batch)
        stores.append(store)
    assert _tables(stores[0]) == _tables(stores[1]) == _derived(stores[1])
    for half_days in range(-1, 24):
        as_of = at(half_days / 2).occurred_at
        for money in (Conversion(), WHOLE_RATES):
            assert summed_report(stores[0], as_of, None, money) == facts_report(
                as_of, load_facts(stores[0], micros(as_of), money), None, money), half_days
    credit = {row.campaign_id: row for row in summed_report(stores[0], at(8.5).occurred_at, None, WHOLE_RATES).attribution}
    assert (credit[a].first_touch_deals, credit[a].last_touch_deals, credit[b].last_touch_deals) == (1, 0, 1)
    for store in stores:
        store.close()
