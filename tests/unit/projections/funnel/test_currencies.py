"""Issue 12: the funnel summed amounts whatever their currency. Values are now kept per currency (items, tallies)
and converted at query time, at the rate in force at the report's instant; a currency without a rate then is
listed apart, never added. The tallies, the filtered scan and the replay of the log agree."""

from __future__ import annotations

from datetime import date, timedelta

from projections.funnel import FunnelFilters, FunnelQueries, FunnelReadModel
from projections.rates import RateQueries, RatesReadModel
from services.application import CrmApplication
from services.commands import ChangeAmount, ChangeStage, OpenDeal, RecordExchangeRate, RegisterCustomer, WinDeal
from services.projection_runtime.funnel_as_of import conversion_from_log, replay_funnel, stages_of
from services.projection_runtime.projector import Projector
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0, at


def _history() -> tuple[CrmApplication, ReadModelStore]:
    """Open in `lead`: 1,000 CNY and 100 USD; won: 200 USD then revalued to 300; in proposal: 1,000 BRL."""
    crm = CrmApplication(database_from_url("memory://"))
    crm.ensure_default_pipelines(at(-30, "setup"))
    customer = crm.register_customer(RegisterCustomer("环球贸易", "华东", "制造业", "web"), at(0))
    crm.open_deal(OpenDeal(customer, "国内", "1000", owner="李娜"), at(1))
    crm.open_deal(OpenDeal(customer, "美国", "100", currency="USD", owner="李娜"), at(1))
    won = crm.open_deal(OpenDeal(customer, "美国大单", "200", currency="USD", owner="王伟"), at(1))
    crm.change_amount(ChangeAmount(won, "300"), at(2))
    crm.win_deal(WinDeal(won), at(3))
    brl = crm.open_deal(OpenDeal(customer, "巴西", "1000", currency="BRL", owner="王伟"), at(1))
    crm.change_stage(ChangeStage(brl, "proposal", ""), at(2))
    for currency, rate, day in (("USD", "7", date(2026, 3, 1)), ("USD", "8", date(2026, 3, 10)),
                                ("BRL", "1.5", date(2026, 3, 20))):
        crm.record_exchange_rate(RecordExchangeRate(currency, rate, day), at(0))
    store = ReadModelStore(database_from_url("memory://"))
    Projector(crm, store, [FunnelReadModel(), RatesReadModel()]).catch_up()
    return crm, store


def _rows(report):  # type: ignore[no-untyped-def]
    return {row.stage: (row.items, row.value_cents, row.unconverted) for row in report.rows if row.items}


def test_values_convert_at_the_rate_of_the_reports_instant_and_a_currency_without_one_is_listed_apart() -> None:
    crm, store = _history()
    queries, stages = FunnelQueries(store), stages_of(crm, "sales")

    for day, usd, brl in ((5, 7, None), (12, 8, None), (25, 8, 1.5)):
        as_of = T0 + timedelta(days=day)
        money = RateQueries(store).conversion("CNY", as_of)
        assert money == conversion_from_log(crm, "CNY", as_of)
        tallied = queries.report("sales", stages, as_of, money=money)
        scanned = queries.report("sales", stages, as_of, FunnelFilters(region="华东"), money=money)
        replayed = replay_funnel(crm, "sales", as_of)

        proposal = (1, 150_000, {}) if brl else (1, 0, {"BRL": 100_000})
        assert _rows(tallied) == {"lead": (2, 100_000 + usd * 10_000, {}), "proposal": proposal}, day
        assert tallied.won_value_cents == usd * 30_000
        assert tallied.unconverted == ({} if brl else {"BRL": 100_000}) and tallied.currency == "CNY"
        assert _rows(scanned) == _rows(tallied) == _rows(replayed)
        assert scanned.won_value_cents == replayed.won_value_cents == tallied.won_value_cents


def test_without_rates_only_the_reporting_currency_counts_and_the_rest_is_listed() -> None:
    crm, store = _history()
    report = FunnelQueries(store).report("sales", stages_of(crm, "sales"), T0 + timedelta(days=5))  # no Conversion

    assert report.rows[0].value_cents == 100_000 and report.rows[0].unconverted == {"USD": 10_000}
    assert report.unconverted == {"BRL": 100_000, "USD": 40_000}
    assert report.to_dict()["unconverted"] == {"BRL": 100_000, "USD": 40_000}
