"""The funnel's sums over the partitions (`funnel_sums`, `tally.refresh_sums`): a report as of T reads one row per
closed day and month, and a late event (an import: business time long past) still counts in every answer after
them. Each test fails without what it names."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from domain.base import Meta
from projections.funnel import FunnelQueries
from projections.funnel.tally import tallied_facts
from projections.tables import micros
from services.application import CrmApplication
from services.commands import ChangeStage, OpenDeal, RegisterCustomer, WinDeal
from services.projection_runtime.funnel_as_of import stages_of
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.support.equivalence import check_funnel_sums

START = datetime(2025, 10, 5, 9, tzinfo=timezone.utc)  # deals until February 2026: 2025 is a closed year
IN_2026 = START + timedelta(days=110)


def _meta(when: datetime) -> Meta:
    return Meta(occurred_at=when, actor="李娜")


def _deal(crm: CrmApplication, customer: object, opened: datetime, won: bool) -> None:
    deal = crm.open_deal(OpenDeal(customer, "项目", "100", owner="李娜"), _meta(opened))  # type: ignore[arg-type]
    crm.change_stage(ChangeStage(deal, "proposal", ""), _meta(opened + timedelta(days=3)))
    if won:
        crm.win_deal(WinDeal(deal), _meta(opened + timedelta(days=9)))


@pytest.fixture
def built(crm: CrmApplication) -> Iterator[tuple[CrmApplication, ReadModelStore]]:
    """Deals opened every 5 days over four months across a new year (several home partitions), caught up: sums
    built."""
    customers = [crm.register_customer(RegisterCustomer(f"客户{n}", "华东", "制造业", "web"), _meta(START))
                 for n in range(6)]
    for n in range(24):
        _deal(crm, customers[n % 6], START + timedelta(days=5 * n), won=n % 3 == 0)
    store = ReadModelStore(database_from_url("memory://"))
    projector_for(crm, store, ["funnel"]).catch_up()
    yield crm, store
    store.close()


def _facts(crm: CrmApplication, store: ReadModelStore, t: datetime, summed: bool = True) -> object:
    return tallied_facts(store, "sales", stages_of(crm, "sales"), micros(t), summed=summed)


def _scanned(crm: CrmApplication, store: ReadModelStore, t: datetime) -> object:
    facts = FunnelQueries(store).scanned_facts("sales", stages_of(crm, "sales"), micros(t))
    return facts


def test_closed_days_and_months_are_summed_over_the_partitions(built: tuple[CrmApplication, ReadModelStore]) -> None:
    crm, store = built
    assert {grain for (grain,) in store.query("SELECT grain FROM funnel_sums")} == {"y", "m", "d"}
    assert store.query("SELECT COUNT(DISTINCT part) FROM funnel_tallies")[0][0] > 1
    check_funnel_sums(store)
    for days in (0, 31, 62, 100, 130):
        t = START + timedelta(days=days, hours=5)
        assert _facts(crm, store, t) == _facts(crm, store, t, summed=False) == _scanned(crm, store, t)


def test_a_late_event_counts_in_the_answers_after_the_sums_were_built(
        built: tuple[CrmApplication, ReadModelStore]) -> None:
    """A deal opened and won in October, recorded months later: October's, its days' and 2025's sums change
    (re-summed by the batch that added to them); without `refresh_sums` re-summing them (and without a query that
    reads a stale sum's partitions instead) the funnel as of December or January would miss it."""
    crm, store = built
    t = IN_2026
    before = _facts(crm, store, t)
    customer = crm.register_customer(RegisterCustomer("迟到", "华东", "制造业", "partner"), _meta(START))
    _deal(crm, customer, START + timedelta(days=2), won=True)
    projector_for(crm, store, ["funnel"]).catch_up()
    after = _facts(crm, store, t)
    assert after != before and after == _scanned(crm, store, t)
    december = START + timedelta(days=60)
    assert _facts(crm, store, december) == _scanned(crm, store, december)
    check_funnel_sums(store)


@pytest.mark.parametrize("days", [60, 110])
def test_a_sum_that_missed_a_change_is_not_read(built: tuple[CrmApplication, ReadModelStore], days: int) -> None:
    """Two workers of different partitions, one closing October while the other adds to it, can leave a sum
    without the other's change: its `n` (and its year's) then differs from its partitions', and the query reads
    them instead (as of December: October's month; in 2026: 2025's year, then October's month)."""
    crm, store = built
    t = START + timedelta(days=days)
    [(part, n, deltas)] = store.query("SELECT part, n, deltas FROM funnel_tallies WHERE pipeline = 'sales' "
                                      "AND grain = 'm' AND period = (SELECT MIN(period) FROM funnel_sums "
                                      "WHERE grain = 'm') ORDER BY part LIMIT 1")
    changed = orjson.loads(deltas)
    changed["n|lead"] = changed.get("n|lead", 0) + 1
    with store.transaction() as cursor:
        cursor.execute("UPDATE funnel_tallies SET n = ?, deltas = ? WHERE pipeline = 'sales' AND grain = 'm' "
                       "AND part = ? AND period = (SELECT MIN(period) FROM funnel_sums WHERE grain = 'm')",
                       [n + 1, orjson.dumps(changed).decode(), part])
    facts = _facts(crm, store, t)
    assert facts == _facts(crm, store, t, summed=False) != _scanned(crm, store, t)
