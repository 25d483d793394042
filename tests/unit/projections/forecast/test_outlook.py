"""The history-based forecast and its backtest, from the forecast read model: the series is what was won per
month of the zone as of T, every method gives a number or says why not, events recorded after T change nothing
of the forecast as of T, and the backtest puts what closed since beside it with each method's errors."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.base import Meta
from domain.forecast_methods import METHODS
from projections.forecast.outlook import OutlookQueries, horizon_of
from projections.rates import RateQueries
from services.application import CrmApplication
from services.commands import ChangeOwner, ChangeStage, LoseDeal, OpenDeal, RegisterCustomer, WinDeal
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.support.forecast_history import SEASON, SHANGHAI, build, month_start

UTC = ZoneInfo("UTC")
FIRST = date(2023, 1, 1)
MONTHS = 30  # January 2023 … June 2025: 29 whole months before T
T = datetime(2025, 6, 1, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def history() -> tuple[CrmApplication, ReadModelStore, dict[date, int]]:
    db = database_from_url("memory://")
    crm = CrmApplication(db)
    won = build(crm, FIRST, MONTHS)
    store = ReadModelStore(db)
    projector_for(crm, store).catch_up()
    return crm, store, won


def forecast(store: ReadModelStore, as_of: datetime = T, zone: ZoneInfo = SHANGHAI, **asked: object) -> dict:
    money = RateQueries(store).conversion("CNY", as_of)
    options = {"grain": "month", "periods": 3, "methods": None, "level": 80, **asked}
    return OutlookQueries(store).forecast(as_of, zone=zone, money=money, **options).to_dict()  # type: ignore[arg-type]


def test_the_history_is_won_per_whole_month_of_the_zone_before_t(history) -> None:  # type: ignore[no-untyped-def]
    _, store, won = history
    found = forecast(store)["history"]

    assert [row["period"] for row in found] == [f"{y}-{m:02d}" for y in (2023, 2024, 2025) for m in range(1, 13)][:29]
    assert [row["won_cents"] for row in found] == [won[month_start(FIRST, k)] for k in range(29)]
    assert found[0]["start"] == "2023-01-01T00:00:00+08:00"


def test_in_utc_a_win_at_seven_in_shanghai_on_the_first_counts_in_the_month_before(history) -> None:  # type: ignore[no-untyped-def]
    _, store, _ = history
    shanghai, utc = forecast(store)["history"], forecast(store, zone=UTC)["history"]

    january, february = (round(100 * round(10_000 * SEASON[k], 2)) for k in (0, 1))
    assert (shanghai[1]["won_cents"], utc[1]["won_cents"]) == (2 * february + january, 3 * february)
    assert (shanghai[0]["won_cents"], utc[0]["won_cents"]) == (2 * january, 3 * january)


def test_every_method_gives_a_number_with_a_band_or_says_why_not(history) -> None:  # type: ignore[no-untyped-def]
    _, store, _ = history
    found = {m["method"]: m for m in forecast(store)["methods"]}

    assert list(found) == list(METHODS)
    for method in found.values():
        assert method["available"] and len(method["periods"]) == 3 and method["reason"] is None, method
        assert all(row["forecast_cents"] >= 0 for row in method["periods"])
    for name in ("pipeline_conversion", "trend", "seasonal", "naive"):
        assert all(row["lower_cents"] <= row["forecast_cents"] <= row["upper_cents"] for row in found[name]["periods"])
    assert found["weighted"]["periods"][0]["lower_cents"] is None  # no error model: no band
    short = {m["method"]: m for m in forecast(store, as_of=datetime(2024, 3, 1, tzinfo=SHANGHAI))["methods"]}
    assert short["seasonal"]["reason"] == "not enough history: 14 periods, need 24"
    assert short["trend"]["available"] and short["naive"]["available"]


def test_the_horizon_is_the_whole_periods_from_t() -> None:
    assert [p.label for p in horizon_of(T, "month", 2, SHANGHAI)] == ["2025-06", "2025-07"]
    assert [p.label for p in horizon_of(T + timedelta(hours=1), "quarter", 2, SHANGHAI)] == ["2025-Q3", "2025-Q4"]


def test_events_after_t_change_nothing(history) -> None:  # type: ignore[no-untyped-def]
    """As of T means as of T: later wins, losses, stage moves and new deals (here recorded after the rest, as
    a live log would) leave the forecast as of T exactly as it was."""
    db = database_from_url("memory://")
    crm = CrmApplication(db)
    build(crm, FIRST, MONTHS)
    store = ReadModelStore(db)
    projector_for(crm, store).catch_up()
    before = forecast(store)

    customer = crm.register_customer(RegisterCustomer("后来的客户", "华南", "零售", "web"), _at(T, 1))
    for days in (1, 3, 40):
        deal = crm.open_deal(OpenDeal(customer, f"后来的单{days}", "500000", owner="王伟",
                                      expected_close=date(2025, 6, 30)), _at(T, days))
        crm.change_stage(ChangeStage(deal, "negotiation"), _at(T, days + 1))
        (crm.win_deal(WinDeal(deal), _at(T, days + 2)) if days != 3 else
         crm.lose_deal(LoseDeal(deal, "预算取消 / budget cut"), _at(T, days + 2)))
    projector_for(crm, store).catch_up()

    assert forecast(store) == before
    assert forecast(store, as_of=T + timedelta(days=60)) != before  # they do count later


def test_a_backtest_puts_what_closed_since_beside_each_forecast(history) -> None:  # type: ignore[no-untyped-def]
    _, store, won = history
    actual_as_of = datetime(2025, 7, 15, tzinfo=SHANGHAI)
    money = RateQueries(store).conversion("CNY", T)
    found = OutlookQueries(store).backtest(T, actual_as_of, "month", 3, None, 80, SHANGHAI, money, money).to_dict()

    assert [(a["period"], a["won_cents"], a["complete"]) for a in found["actuals"]] == [
        ("2025-06", won[date(2025, 6, 1)], True), ("2025-07", won[date(2025, 7, 1)], False), ("2025-08", 0, False)]
    for method in found["methods"]:
        first = method["periods"][0]
        assert first["error_cents"] == first["forecast_cents"] - won[date(2025, 6, 1)]
        assert method["periods"][1]["error_cents"] is None  # July was not over when the actuals were taken
        assert method["errors"]["periods_compared"] == 1
        assert method["errors"]["mae_cents"] == abs(first["error_cents"])
    assert found["as_of"] == "2025-06-01T00:00:00+08:00" and found["actual_as_of"] == "2025-07-15T00:00:00+08:00"


@pytest.mark.parametrize(("asked", "message"), [
    ({"periods": 0}, "from 1 to 24"), ({"grain": "week"}, "month or quarter"),
    ({"methods": ["prophet"]}, "unknown forecast method"), ({"level": 100}, "from 50 to 99"),
])
def test_bad_input_is_a_value_error_with_a_sentence(history, asked: dict, message: str) -> None:  # type: ignore[no-untyped-def]
    _, store, _ = history
    with pytest.raises(ValueError, match=message):
        forecast(store, **asked)


def test_a_backtest_needs_its_actuals_after_its_forecast(history) -> None:  # type: ignore[no-untyped-def]
    _, store, _ = history
    money = RateQueries(store).conversion("CNY", T)
    with pytest.raises(ValueError, match="actual_as_of must be after as_of"):
        OutlookQueries(store).backtest(T, T, "month", 3, None, 80, SHANGHAI, money, money)


def test_an_empty_log_says_not_enough_history_for_every_fitted_method() -> None:
    db = database_from_url("memory://")
    crm = CrmApplication(db)
    store = ReadModelStore(db)
    projector_for(crm, store).catch_up()
    found = {m["method"]: m for m in forecast(store)["methods"]}

    assert found["weighted"]["available"] and found["trend"]["reason"] == \
        "not enough history: 0 periods, need 10"
    assert found["pipeline_conversion"]["reason"] == "not enough history: 0 closed stage entries, need 20"


def _at(instant: datetime, days: float) -> Meta:
    return Meta(occurred_at=instant + timedelta(days=days), actor="王伟")


def test_days_to_close_are_to_the_close_not_to_a_later_owner_change() -> None:
    """A closed deal may still be reassigned: its win after 10 days stays 10 days when its owner changes on day
    100, a loss after 5 stays 5 (review of issue 15, P2: the version in force at T was taken as the close)."""
    def on(day: int) -> Meta:
        return Meta(occurred_at=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=day), actor="李娜")

    db = database_from_url("memory://")
    crm = CrmApplication(db)
    crm.ensure_default_pipelines(on(-400))
    customer = crm.register_customer(RegisterCustomer("甲公司", "华东", "制造业", "web"), on(0))
    won = crm.open_deal(OpenDeal(customer, "won", "100", owner="李娜"), on(0))
    crm.win_deal(WinDeal(won), on(10))
    crm.change_owner(ChangeOwner(won, "王伟"), on(100))
    lost = crm.open_deal(OpenDeal(customer, "lost", "100", owner="李娜"), on(0))
    crm.lose_deal(LoseDeal(lost, "价格"), on(5))
    crm.change_owner(ChangeOwner(lost, "王伟"), on(150))
    store = ReadModelStore(db)
    projector_for(crm, store).catch_up()

    (history,) = OutlookQueries(store)._stage_histories(on(200).occurred_at).values()
    assert sorted(zip(history.outcomes, history.days)) == [(1, 10), (2, 5)]  # won after 10 days, lost after 5
