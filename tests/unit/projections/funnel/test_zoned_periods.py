"""The funnel's periods, cohorts and tallies in the business's time zone: a deal won just after midnight on
1 April in Shanghai is Q2's there and Q1's in UTC; one won at 23:30 on 31 March in New York is Q1's there
and Q2's in UTC. Each case here fails where periods were UTC's only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import pytest

from domain.base import Meta
from domain.periods import UTC, day_number, zone_named
from projections.funnel import FunnelQueries
from projections.funnel.tally import tallied_facts
from services.application import CrmApplication
from services.commands import ChangeStage, OpenDeal, RegisterCustomer, WinDeal
from services.projection_runtime.funnel_as_of import stages_of, replay_funnel
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.support.equivalence import time_zone

SHANGHAI, NEW_YORK = zone_named("Asia/Shanghai"), zone_named("America/New_York")
SHANGHAI_APRIL = datetime(2026, 3, 31, 16, 30, tzinfo=timezone.utc)  # 00:30 on 1 April in Shanghai
NEW_YORK_MARCH = datetime(2026, 4, 1, 3, 30, tzinfo=timezone.utc)  # 23:30 on 31 March in New York (EDT)
OPENED = datetime(2026, 2, 28, 17, tzinfo=timezone.utc)  # 01:00 on 1 March in Shanghai, 12:00 on 28 Feb in NY


def _meta(when: datetime) -> Meta:
    return Meta(occurred_at=when, actor="李娜")


def _history(crm: CrmApplication) -> None:
    customer = crm.register_customer(RegisterCustomer("张三", "华东", "制造业", "web"), _meta(OPENED))
    for won in (SHANGHAI_APRIL, NEW_YORK_MARCH):
        deal = crm.open_deal(OpenDeal(customer, "项目", "100", owner="李娜"), _meta(OPENED))
        crm.change_stage(ChangeStage(deal, "proposal", ""), _meta(OPENED + timedelta(days=1)))
        crm.win_deal(WinDeal(deal), _meta(won))


@pytest.fixture
def built_in() -> Iterator[Callable[[CrmApplication, str], FunnelQueries]]:
    """Build the funnel of `_history` with CRM_TIME_ZONE set to a zone; its queries."""
    stores: list[ReadModelStore] = []

    def build(crm: CrmApplication, zone: str) -> FunnelQueries:
        _history(crm)
        store = ReadModelStore(database_from_url("memory://"))
        stores.append(store)
        with time_zone(zone):
            projector_for(crm, store).catch_up()
        return FunnelQueries(store, zone_named(zone))

    yield build
    for store in stores:
        store.close()


def _won_per_quarter(queries: FunnelQueries, zone=None) -> dict[str, int]:
    rows = queries.periods("sales", "quarter", datetime(2026, 1, 1, tzinfo=UTC) - timedelta(days=1),
                           datetime(2026, 6, 1, tzinfo=UTC), zone=zone)
    return {row.period: row.won for row in rows}


def test_a_quarter_is_the_installations_and_utcs_only_when_asked(crm, built_in) -> None:
    queries = built_in(crm, "Asia/Shanghai")
    assert _won_per_quarter(queries) == {"2025-Q4": 0, "2026-Q1": 0, "2026-Q2": 2}  # both won after 1 April there
    assert _won_per_quarter(queries, NEW_YORK) == {"2025-Q4": 0, "2026-Q1": 2, "2026-Q2": 0}
    assert _won_per_quarter(queries, UTC) == {"2025-Q4": 0, "2026-Q1": 1, "2026-Q2": 1}


def test_a_periods_ends_carry_its_zone(crm, built_in) -> None:
    rows = built_in(crm, "Asia/Shanghai").periods("sales", "month", SHANGHAI_APRIL, SHANGHAI_APRIL + timedelta(hours=1))
    assert [(row.period, row.start.isoformat(), row.end.isoformat()) for row in rows] == [
        ("2026-04", "2026-04-01T00:00:00+08:00", "2026-05-01T00:00:00+08:00")]


def test_weekly_periods_are_iso_weeks_of_the_zone(crm, built_in) -> None:
    rows = built_in(crm, "America/New_York").periods("sales", "week", datetime(2026, 3, 30, 12, tzinfo=UTC),
                                                     datetime(2026, 4, 8, tzinfo=UTC))
    assert [(row.period, row.won) for row in rows] == [("2026-W14", 2), ("2026-W15", 0)]


def test_a_cohort_is_the_month_an_item_was_created_in_there(crm, built_in) -> None:
    queries = built_in(crm, "Asia/Shanghai")
    stages, as_of = stages_of(crm, "sales"), datetime(2026, 5, 1, tzinfo=UTC)
    assert [g.key for g in queries.grouped("sales", stages, as_of, [], cohort="month").groups] == [
        {"cohort": "2026-03"}]
    assert [g.key for g in queries.grouped("sales", stages, as_of, [], cohort="month", zone=UTC).groups] == [
        {"cohort": "2026-02"}]


@pytest.mark.parametrize(("zone", "months"), [("Asia/Shanghai", (3, 4)), ("America/New_York", (2, 3))])
def test_the_tallies_keep_the_zones_days_and_sum_to_the_funnel_at_any_instant(crm, built_in, zone, months) -> None:
    """Opened on 1 March in Shanghai (28 February in New York), won in April there (March in New York)."""
    queries = built_in(crm, zone)
    kept = {period for (period,) in queries.store.query(
        "SELECT DISTINCT period FROM funnel_tallies WHERE grain = 'm' AND pipeline = 'sales'")}
    assert kept == {day_number(datetime(2026, month, 1, 12, tzinfo=zone_named(zone)), zone_named(zone))
                    for month in months}
    stages = stages_of(crm, "sales")
    for won in (SHANGHAI_APRIL, NEW_YORK_MARCH):
        for delta in (-1, 0, 1, 90 * 60):  # the second before, at, after, and the day's local midnight passed
            t = won + timedelta(seconds=delta)
            tallied = tallied_facts(queries.store, "sales", stages, int(t.timestamp() * 1_000_000), zone_named(zone))
            assert tallied == queries.scanned_facts("sales", stages, int(t.timestamp() * 1_000_000))
            assert queries.report("sales", stages, t) == replay_funnel(crm, "sales", t)
