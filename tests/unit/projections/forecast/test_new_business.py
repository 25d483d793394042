"""`pipeline_conversion`'s second part: the deals not yet open at T, as after past instants like T. Each past
month's new deals (opened after its first day, won in it) stand for the next month's; a deal opened before the
instant like T is the pipeline's, not new business; instants before the first deal are not like T (no zeros
from before the business was in the CRM); the band widens by the analogues' spread."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from domain.base import Meta
from projections.forecast.outlook import OutlookQueries
from projections.rates import RateQueries
from services.application import CrmApplication
from services.commands import OpenDeal, RegisterCustomer, WinDeal
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.support.forecast_history import SHANGHAI

T = datetime(2025, 6, 1, tzinfo=SHANGHAI)  # the first horizon month (June) starts at T: no gap


def _at(day: date, hour: int = 10) -> Meta:
    return Meta(occurred_at=datetime.combine(day, time(hour), SHANGHAI), actor="李娜")


def _won(crm: CrmApplication, customer: object, opened: date, won: date, amount: str) -> None:
    deal = crm.open_deal(OpenDeal(customer, "单", amount, owner="李娜"), _at(opened))
    crm.win_deal(WinDeal(deal), _at(won))


def _forecast(extra_in_april: str | None = None) -> list[dict]:
    db = database_from_url("memory://")
    crm = CrmApplication(db)
    crm.ensure_default_pipelines(_at(date(2024, 12, 1)))
    customer = crm.register_customer(RegisterCustomer("张三", "华东", "零售", "web"), _at(date(2024, 12, 1)))
    for month in range(1, 6):  # January … May 2025
        first = date(2025, month, 1)
        for _ in range(4):  # opened and won within the month: new business of that month
            _won(crm, customer, first + timedelta(days=2), first + timedelta(days=9), "1000")
        _won(crm, customer, first - timedelta(days=7), first + timedelta(days=14), "500")  # opened the month before
    if extra_in_april:
        _won(crm, customer, date(2025, 4, 3), date(2025, 4, 11), extra_in_april)
    store = ReadModelStore(db)
    projector_for(crm, store).catch_up()
    money = RateQueries(store).conversion("CNY", T)
    found = OutlookQueries(store).forecast(T, "month", 2, ["pipeline_conversion"], 80, SHANGHAI, money).to_dict()
    return found["methods"][0]["periods"]


def test_new_deals_after_instants_like_t_are_forecast_and_older_ones_are_the_pipelines() -> None:
    june, july = _forecast()
    # June: each of January … May's new deals won 4 × 1,000 (the 500 deal was opened before the month began);
    # December 2024 is before the first deal (opened 24 December): not an instant like T.
    assert june["forecast_cents"] == 400_000
    # July, one month further: deals opened after the first of April won in May (4,000 + the 500 opened on
    # 24 April), … February's after January (4,500 each); January's window (after 1 December) is before the first deal.
    assert july["forecast_cents"] == 450_000
    # No open deals, the same new business each month: no spread, which is no certainty — no band (not a zero-wide one).
    assert june["lower_cents"] is None and june["upper_cents"] is None


def test_the_analogues_spread_widens_the_band() -> None:
    june, _ = _forecast(extra_in_april="3000")  # April's new deals won 7,000, the other months 4,000
    assert june["forecast_cents"] == 460_000  # (4 × 4,000 + 7,000) / 5
    assert june["lower_cents"] < 460_000 < june["upper_cents"]
