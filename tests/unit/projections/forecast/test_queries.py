"""The forecast as of T: periods in the business's zone, a deal's standing then, targets and teams then, money
at the rates then."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from domain.base import Meta
from projections.forecast import ForecastQueries
from projections.rates import RateQueries
from services.application import CrmApplication
from services.commands import ChangeOwner, ChangeStage, OpenDeal, RecordExchangeRate, RegisterCustomer, WinDeal
from services.commands.forecasts import AssignTeam, ChangeExpectedClose, ChangeForecastCategory, SetTarget
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 1, 5, tzinfo=timezone.utc)


def at(days: float, actor: str = "李娜") -> Meta:
    return Meta(occurred_at=START + timedelta(days=days), actor=actor)


@pytest.fixture
def history() -> tuple[CrmApplication, ReadModelStore]:
    db = database_from_url("memory://")
    crm = CrmApplication(db)
    crm.ensure_default_pipelines(at(-30, "setup"))
    east = crm.register_customer(RegisterCustomer("甲公司", "华东", "制造业", "web"), at(0))
    south = crm.register_customer(RegisterCustomer("乙公司", "华南", "零售", "web"), at(0))
    won = crm.open_deal(OpenDeal(east, "一期", "100000", owner="李娜", expected_close=date(2026, 3, 31)), at(1))
    crm.win_deal(WinDeal(won), Meta(occurred_at=datetime(2026, 4, 1, 7, tzinfo=SHANGHAI), actor="李娜"))  # 3-31 23:00Z
    slipping = crm.open_deal(OpenDeal(south, "二期", "50000", owner="王伟", expected_close=date(2026, 3, 20)), at(1))
    crm.change_stage(ChangeStage(slipping, "contract_signed"), at(2))  # default: commit, 86 %
    crm.change_expected_close(ChangeExpectedClose(slipping, date(2026, 5, 10), "法务审核"), at(40))
    usd = crm.open_deal(OpenDeal(south, "三期", "1000", currency="USD", owner="王伟",
                                 expected_close=date(2026, 6, 1)), at(1))
    crm.change_forecast_category(ChangeForecastCategory(usd, "omitted", "预算未批"), at(3))
    crm.change_owner(ChangeOwner(usd, "李娜"), at(50))
    crm.set_target(SetTarget("owner", "李娜", "2026-04", "60000"), at(10))
    crm.set_target(SetTarget("owner", "李娜", "2026-05", "40000"), at(60))
    crm.assign_team(AssignTeam("王伟", "华南组"), at(20))
    crm.record_exchange_rate(RecordExchangeRate("USD", "7", date(2026, 2, 1)), at(0))
    store = ReadModelStore(db)
    projector_for(crm, store).catch_up()
    return crm, store


def report(history: tuple[CrmApplication, ReadModelStore], days: float, zone: ZoneInfo = SHANGHAI,
           **asked: object) -> dict:
    crm, store = history
    as_of = START + timedelta(days=days)
    money = RateQueries(store).conversion(crm.reporting_currency, as_of)
    return ForecastQueries(store).report(as_of, zone=zone, money=money, **asked).to_dict()  # type: ignore[arg-type]


def rows(answer: dict) -> dict[tuple[str, str | None], dict]:
    return {(row["period"], row["group"]): row for row in answer["rows"]}


def test_a_win_belongs_to_the_period_of_the_business_zone(history) -> None:
    shanghai, utc = rows(report(history, 100)), rows(report(history, 100, ZoneInfo("UTC")))
    assert shanghai[("2026-Q2", None)]["closed_won_cents"] == 10_000_000  # 1 April 07:00 in Shanghai
    assert utc[("2026-Q1", None)]["closed_won_cents"] == 10_000_000  # 31 March 23:00 in UTC
    assert report(history, 100)["rows"][0]["start"] == "2026-04-01T00:00:00+08:00"


def test_a_deal_counts_where_its_close_date_stood_at_t(history) -> None:
    before, after = rows(report(history, 30)), rows(report(history, 45))
    assert before[("2026-Q1", None)]["commit_cents"] == 5_000_000  # expected 20 March then
    assert before[("2026-Q1", None)]["weighted_pipeline_cents"] == 4_300_000 + 1_400_000  # 86 % and 14 % (lead)
    assert after[("2026-Q2", None)]["commit_cents"] == 5_000_000  # moved to 10 May on day 40
    assert ("2026-Q1", None) not in after or after[("2026-Q1", None)]["commit_cents"] == 0


def test_targets_and_teams_as_they_stood_then(history) -> None:
    early = rows(report(history, 45, by="owner"))[("2026-Q2", "李娜")]  # only April's target was set by then
    assert (early["target_cents"], early["deals"], early["attainment_percent"], early["gap_cents"]) == (
        6_000_000, 0, "0.0", 6_000_000)
    late = rows(report(history, 90, by="owner"))[("2026-Q2", "李娜")]  # May's too, and the win of 1 April
    assert (late["target_cents"], late["closed_won_cents"], late["attainment_percent"], late["gap_cents"]) == (
        10_000_000, 10_000_000, "100.0", 0)
    month = rows(report(history, 90, grain="month", by="owner"))
    assert month[("2026-05", "李娜")]["gap_cents"] == 4_000_000  # nothing won in May yet
    assert rows(report(history, 10, by="team"))[("2026-Q1", "")]["commit_cents"] == 5_000_000
    assert rows(report(history, 30, by="team"))[("2026-Q1", "华南组")]["commit_cents"] == 5_000_000


def test_omitted_deals_count_apart_and_money_is_converted_at_t(history) -> None:
    usd = rows(report(history, 60, by="owner", period="2026-Q2"))[("2026-Q2", "李娜")]
    assert (usd["omitted_cents"], usd["weighted_pipeline_cents"], usd["deals"]) == (700_000, 0, 1)  # 1000 USD at 7, owned by 李娜 since day 50
    early = report(history, 10, by="region")
    assert early["unconverted"] == {"USD": 100_000}  # no USD rate before 1 February
    assert set(rows(early)) == {("2026-Q1", "华东"), ("2026-Q1", "华南"), ("2026-Q2", "华南")}


def test_bad_questions_are_refused_with_a_sentence(history) -> None:
    for asked, words in (({"period": "2026-W10"}, "not a week"), ({"grain": "year"}, "month or quarter"),
                         ({"by": "product"}, "grouped by")):
        with pytest.raises(ValueError, match=words):
            report(history, 10, **asked)
