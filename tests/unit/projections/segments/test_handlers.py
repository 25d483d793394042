"""A customer with many deals arriving out of business-time order: the segments read model recomputes
its timeline once per batch, and whatever the batches, it holds exactly the timeline by definition."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from unittest.mock import patch
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import projections.segments.handlers as segments_module
from domain.segmentation import OpenDeal, Purchase
from projections.segments import SegmentsReadModel
from projections.segments.handlers import _interval_row
from services.application import CrmApplication
from services import commands
from services.commands import LoseDeal, RegisterCustomer, ReopenDeal, WinDeal
from services.projection_runtime.projector import Projector
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import T0, at
from tests.unit.domain.test_segmentation_sweep import reference_timeline

CUSTOMER = UUID("00000000-0000-4000-8000-0000000000aa")
LIVE = ("SELECT seq, valid_from, valid_to, tier, tier_since, recency, frequency, monetary, monetary_cents, "
        "open_deals, last_purchase_at, preferred_pipeline FROM segments_intervals WHERE customer_id = ? "
        "AND (valid_to IS NULL OR valid_to > valid_from) ORDER BY seq")

# A deal: the day it opens, after how many days it closes, how (won / lost / won, reopened, won again),
# its amount and pipeline.
deals = st.tuples(st.integers(0, 500), st.integers(0, 60), st.sampled_from(["won", "lost", "rewon", "open"]),
                  st.sampled_from(["1000", "60000", "250000"]), st.sampled_from(["sales", "marketing"]))


def _record(crm: CrmApplication, plan: list[tuple[int, int, str, str, str]]) -> tuple[list[Purchase], list[OpenDeal]]:
    """Save the deals one after the other (their business times out of order); return the facts."""
    crm.register_customer(RegisterCustomer("大客户", "华东", "制造业", "web", id=CUSTOMER, company="某公司"), at(0))
    purchases, open_deals = [], []
    for opened, days, fate, amount, pipeline in plan:
        deal = crm.open_deal(commands.OpenDeal(CUSTOMER, "项目", amount, pipeline=pipeline, owner="李娜"), at(opened))
        closed = opened + days
        if fate == "open":
            open_deals.append(OpenDeal(at(opened).occurred_at))
            continue
        open_deals.append(OpenDeal(at(opened).occurred_at, at(closed).occurred_at))
        if fate == "lost":
            crm.lose_deal(LoseDeal(deal, "价格"), at(closed))
            continue
        crm.win_deal(WinDeal(deal), at(closed))
        if fate == "rewon":
            crm.reopen_deal(ReopenDeal(deal, "追加"), at(closed + 3))
            crm.win_deal(WinDeal(deal), at(closed + 3 + days))
            open_deals.append(OpenDeal(at(closed + 3).occurred_at, at(closed + 3 + days).occurred_at))
            purchases.append(Purchase(at(closed).occurred_at, Decimal(amount), "CNY", pipeline,
                                      at(closed + 3).occurred_at))
            closed += 3 + days
        purchases.append(Purchase(at(closed).occurred_at, Decimal(amount), "CNY", pipeline))
    return purchases, open_deals


def _live(store: ReadModelStore) -> list[tuple[object, ...]]:
    return [tuple(row) for row in store.query(LIVE, [str(CUSTOMER)])]


@pytest.mark.parametrize("resume_from", [segments_module.RESUME_FROM, 1], ids=["from the start", "resuming"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(deals, min_size=1, max_size=40), st.lists(st.integers(1, 30), min_size=1, max_size=8))
def test_many_deals_out_of_order_in_any_batches_give_the_timeline_by_definition(
        resume_from: int, plan: list[tuple[int, int, str, str, str]], batches: list[int]) -> None:
    """`resume_from` 1: every recompute after the first starts from the last interval the batch left."""
    with patch.object(segments_module, "RESUME_FROM", resume_from):
        _check_many_deals(plan, batches)


def _check_many_deals(plan: list[tuple[int, int, str, str, str]], batches: list[int]) -> None:
    crm = CrmApplication(database_from_url("memory://"))
    crm.ensure_default_pipelines(at(-30, "setup"))
    purchases, open_deals = _record(crm, plan)
    incremental, rebuilt = (ReadModelStore(database_from_url("memory://")) for _ in range(2))
    follower = Projector(crm, incremental, [SegmentsReadModel()])
    for size in batches:  # part of the log in batches of random sizes, then the rest
        follower.run_batch(size)
    follower.catch_up(limit=max(batches))
    Projector(crm, rebuilt, [SegmentsReadModel()]).rebuild()

    expected = reference_timeline(T0, None, purchases, open_deals)
    assert _live(incremental) == _live(rebuilt) == [
        tuple(_interval_row(str(CUSTOMER), seq, interval))[1:] for seq, interval in enumerate(expected)]
    for store in (incremental, rebuilt):
        store.close()
    crm.close()


@pytest.fixture
def recomputes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many purchases each recomputed timeline had, in order."""
    calls: list[int] = []
    real = segments_module.segment_timeline

    def counting(start, end, purchases, open_deals, after=None):  # type: ignore[no-untyped-def]
        calls.append(len(purchases))
        return real(start, end, purchases, open_deals, after)

    monkeypatch.setattr(segments_module, "segment_timeline", counting)
    yield calls


def test_a_batch_recomputes_each_customer_once_not_once_per_event(crm: CrmApplication,
                                                                   recomputes: list[int]) -> None:
    _record(crm, [(day * 7 % 300, 5, "won", "60000", "sales") for day in range(60)])  # 121 events, 60 wins
    store = ReadModelStore(database_from_url("memory://"))

    Projector(crm, store, [SegmentsReadModel()]).catch_up()

    assert recomputes == [60]
    store.close()
