"""The rates read model: per currency the rate of its latest date at or before T (a correction replaces its
date's figure), only those quoted in the asked currency; and every rate recorded, newest date first."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from domain.exchange_rates import Conversion, RateInForce
from projections.rates import RateQueries, RatesReadModel
from services.application import CrmApplication
from services.commands import RecordExchangeRate
from services.projection_runtime.projector import Projector
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at

MARCH_2 = datetime(2026, 3, 2, tzinfo=timezone.utc)


def _queries() -> RateQueries:
    crm = CrmApplication(database_from_url("memory://"))
    for currency, rate, day, quote in (("USD", "7.1", 2, "CNY"), ("USD", "7.2", 5, "CNY"), ("BRL", "1.3", 3, "CNY"),
                                       ("USD", "0.9", 2, "EUR"), ("USD", "7.15", 2, "CNY")):  # the last corrects
        crm.record_exchange_rate(RecordExchangeRate(currency, rate, date(2026, 3, day), source="测试", quote=quote),
                                 at(0))
    store = ReadModelStore(database_from_url("memory://"))
    Projector(crm, store, [RatesReadModel()]).catch_up()
    return RateQueries(store)


def test_the_rate_in_force_is_that_of_the_latest_date_from_its_midnight_utc() -> None:
    queries = _queries()

    assert queries.in_force("CNY", MARCH_2 - timedelta(microseconds=1)) == {}
    assert queries.in_force("CNY", MARCH_2) == {"USD": RateInForce(Decimal("7.15"), date(2026, 3, 2))}
    assert queries.in_force("CNY", MARCH_2 + timedelta(days=10)) == {
        "USD": RateInForce(Decimal("7.2"), date(2026, 3, 5)), "BRL": RateInForce(Decimal("1.3"), date(2026, 3, 3))}
    assert queries.conversion("EUR", MARCH_2) == Conversion("EUR", {"USD": RateInForce(Decimal("0.9"),
                                                                                        date(2026, 3, 2))})


def test_the_listing_is_newest_first_and_filters_by_quote_and_currency() -> None:
    listed = [(r.currency, r.valid_from.day, str(r.rate)) for r in _queries().listing(quote="CNY", currency="USD")]

    assert listed == [("USD", 5, "7.2"), ("USD", 2, "7.15")]
    assert _queries().listing(limit=1)[0].to_dict() == {"currency": "USD", "quote": "CNY", "valid_from": "2026-03-05",
                                                        "rate": "7.2", "source": "测试"}
