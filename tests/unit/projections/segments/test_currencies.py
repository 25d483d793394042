"""Issue 12: customer-value segments counted only CNY. Purchases in USD and BRL now count in M, in CNY at the
rate in force when each was made; one made before any rate was known is reported apart, never added."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

from projections.segments import SegmentQueries, SegmentsReadModel
from services.application import CrmApplication
from services.commands import OpenDeal, RecordExchangeRate, RegisterCustomer, WinDeal
from services.projection_runtime.projector import Projector
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0, at

BUYER = UUID("00000000-0000-4000-8000-0000000000b1")


def _bought(crm: CrmApplication, day: float, amount: str, currency: str) -> None:
    deal = crm.open_deal(OpenDeal(BUYER, "订单", amount, currency=currency, owner="李娜"), at(day))
    crm.win_deal(WinDeal(deal), at(day + 0.1))


def _segments(crm: CrmApplication) -> SegmentQueries:
    store = ReadModelStore(database_from_url("memory://"))
    Projector(crm, store, [SegmentsReadModel()]).catch_up()
    return SegmentQueries(store)


def test_usd_and_brl_purchases_count_in_monetary_at_the_rate_of_their_day() -> None:
    crm = CrmApplication(database_from_url("memory://"))
    crm.ensure_default_pipelines(at(-30, "setup"))
    crm.register_customer(RegisterCustomer("巴西客户", "海外", "制造业", "web", id=BUYER), at(0))
    _bought(crm, 1, "60000", "USD")  # 1 March: 7.0 → 420,000 CNY
    _bought(crm, 3, "40000", "BRL")  # 3 March: 1.25 → 50,000 CNY
    _bought(crm, 4, "10000", "CNY")
    # Rates imported afterwards, for the dates they were quoted for; a later USD rate changes nothing before it.
    for currency, rate, day in (("USD", "7.0", date(2026, 3, 1)), ("BRL", "1.25", date(2026, 3, 2)),
                                ("USD", "8.0", date(2026, 3, 20))):
        crm.record_exchange_rate(RecordExchangeRate(currency, rate, day), at(0))

    segment = _segments(crm).segment_of(BUYER, T0 + timedelta(days=10))

    assert segment is not None
    assert (segment.monetary_cents, segment.monetary, segment.unconverted) == (48_000_000, 3, {})
    assert (segment.frequency, segment.tier) == (3, "high_value")


def test_a_purchase_before_any_rate_is_reported_apart_by_currency_not_added() -> None:
    crm = CrmApplication(database_from_url("memory://"))
    crm.ensure_default_pipelines(at(-30, "setup"))
    crm.register_customer(RegisterCustomer("美国客户", "海外", "互联网", "web", id=BUYER), at(0))
    _bought(crm, 1, "60000", "USD")
    _bought(crm, 2, "60000", "CNY")
    crm.record_exchange_rate(RecordExchangeRate("USD", "7.0", date(2026, 3, 5)), at(0))

    segment = _segments(crm).segment_of(BUYER, T0 + timedelta(days=10))

    assert segment is not None
    assert (segment.monetary_cents, segment.unconverted, segment.frequency) == (6_000_000, {"USD": 6_000_000}, 2)
    assert segment.to_dict()["unconverted"] == {"USD": 6_000_000}
