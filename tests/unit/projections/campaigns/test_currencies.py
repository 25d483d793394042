"""Issue 12: campaigns' cost and revenue were summed whatever their currency. A report as of T converts each
into the reporting currency at the rate in force at T; an amount without a rate is listed apart, by
currency, and leaves the campaign without ROI or CAC rather than with a wrong one."""

from __future__ import annotations

from datetime import date, timedelta

from projections.campaigns import CampaignQueries, CampaignsReadModel
from projections.rates import RateQueries, RatesReadModel
from services.application import CrmApplication
from services.commands import (LaunchCampaign, OpenDeal, PlanCampaign, RecordCost, RecordExchangeRate,
                               RegisterCustomer, WinDeal)
from services.projection_runtime.projector import Projector
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0, at


def _history() -> tuple[CrmApplication, ReadModelStore]:
    """A campaign priced in CNY (cost 10,000) brings a customer who buys for 2,000 USD and 1,000 BRL."""
    crm = CrmApplication(database_from_url("memory://"))
    crm.ensure_default_pipelines(at(-30, "setup"))
    campaign = crm.plan_campaign(PlanCampaign("海外展会", "event", "50000"), at(0))
    crm.launch_campaign(LaunchCampaign(campaign), at(0))
    crm.record_cost(RecordCost(campaign, "10000"), at(1))
    customer = crm.register_customer(RegisterCustomer("São Paulo Ltda", "海外", "制造业", "event",
                                                      campaign_id=campaign), at(1))
    for amount, currency in (("2000", "USD"), ("1000", "BRL")):
        deal = crm.open_deal(OpenDeal(customer, "订单", amount, currency=currency, campaign_id=campaign), at(2))
        crm.win_deal(WinDeal(deal), at(3))
    for currency, rate, day in (("USD", "7", 1), ("USD", "8", 10), ("BRL", "1.5", 20)):
        crm.record_exchange_rate(RecordExchangeRate(currency, rate, (T0 + timedelta(days=day)).date()), at(0))
    store = ReadModelStore(database_from_url("memory://"))
    Projector(crm, store, [CampaignsReadModel(), RatesReadModel()]).catch_up()
    return crm, store


def _report(store: ReadModelStore, day: float):  # type: ignore[no-untyped-def]
    as_of = T0 + timedelta(days=day)
    return CampaignQueries(store).report(as_of, money=RateQueries(store).conversion("CNY", as_of))


def test_revenue_converts_at_the_rate_in_force_at_the_reports_instant_and_a_missing_rate_is_listed() -> None:
    _, store = _history()

    before = _report(store, 5)  # USD at 7; BRL has no rate yet
    [row] = before.campaigns
    assert (row.totals.cost_cents, row.totals.won_revenue_cents) == (1_000_000, 1_400_000)
    assert row.totals.unconverted == {"BRL": 100_000} == before.unconverted
    assert (row.totals.roi, row.totals.cac_cents) == (None, None)
    assert before.currency == "CNY" and before.rates == {"USD": {"rate": "7", "valid_from": "2026-03-02"}}

    after = _report(store, 25)  # USD at 8, BRL at 1.5
    [row] = after.campaigns
    assert (row.totals.won_revenue_cents, row.totals.unconverted, after.unconverted) == (1_750_000, {}, {})
    assert row.totals.roi == 0.75 and row.totals.cac_cents == 1_000_000
    assert after.clv_by_channel[0].total_cents == 1_750_000


def test_cost_in_another_currency_than_the_reporting_one_converts_too() -> None:
    crm, store = _history()
    as_of = T0 + timedelta(days=25)

    in_usd = CampaignQueries(store).report(as_of, money=RateQueries(store).conversion("USD", as_of))

    assert in_usd.unconverted == {"BRL": 100_000, "CNY": 1_000_000}  # no rates quoted in USD were recorded
    assert in_usd.campaigns[0].totals.won_revenue_cents == 200_000
    crm.record_exchange_rate(RecordExchangeRate("CNY", "0.125", date(2026, 3, 1), quote="USD"), at(0))
    Projector(crm, store, [CampaignsReadModel(), RatesReadModel()]).catch_up()
    in_usd = CampaignQueries(store).report(as_of, money=RateQueries(store).conversion("USD", as_of))
    assert in_usd.campaigns[0].totals.cost_cents == 125_000 and in_usd.unconverted == {"BRL": 100_000}
