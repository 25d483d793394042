"""A customer with many deals arriving out of business-time order: the segments read model recomputes
its timeline once per batch, and whatever the batches, it holds exactly the timeline by definition; with
purchases in USD and BRL converted into CNY at the rate in force when each was made, whether the rates are
recorded before or after the purchases (then the timeline is recomputed from the rate's date)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from unittest.mock import patch
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import projections.segments.handlers as segments_module
from domain.exchange_rates import convert_cents, valid_from_instant
from domain.segmentation import OpenDeal, Purchase
from projections.segments import SegmentsReadModel
from projections.segments.handlers import _interval_row
from services.application import CrmApplication
from services import commands
from services.commands import LoseDeal, RecordExchangeRate, RegisterCustomer, ReopenDeal, WinDeal
from services.projection_runtime.projector import Projector
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import T0, at
from tests.unit.domain.test_segmentation_sweep import reference_timeline

CUSTOMER = UUID("00000000-0000-4000-8000-0000000000aa")
LIVE = ("SELECT seq, valid_from, valid_to, tier, tier_since, recency, frequency, monetary, monetary_cents, "
        "open_deals, last_purchase_at, preferred_pipeline, unconverted FROM segments_intervals WHERE customer_id = ? "
        "AND (valid_to IS NULL OR valid_to > valid_from) ORDER BY seq")

# A deal: the day it opens, after how many days it closes, how (won / lost / won, reopened, won again),
# its amount and pipeline.
deals = st.tuples(st.integers(0, 500), st.integers(0, 60), st.sampled_from(["won", "lost", "rewon", "open"]),
                  st.sampled_from(["1000", "60000", "250000"]), st.sampled_from(["sales", "marketing"]),
                  st.sampled_from(["CNY", "CNY", "USD", "BRL"]))
# Rates into CNY: currency, days after T0 of the date it is quoted for, figure; the first half is recorded
# before the deals, the rest after them (as a rates file imported later).
rates = st.lists(st.tuples(st.sampled_from(["USD", "BRL"]), st.integers(-5, 560),
                           st.sampled_from(["7.1", "1.25", "0.333333"])), max_size=6)
Rates = list[tuple[str, int, str]]


def _record_rates(crm: CrmApplication, plan: Rates) -> None:
    for currency, days, rate in plan:
        crm.record_exchange_rate(RecordExchangeRate(currency, rate, (T0 + timedelta(days=days)).date()), at(0))


def _in_cny(amount: str, currency: str, made: object, plan: Rates) -> Decimal | None:
    """By definition: the amount at the last figure recorded for the latest date in force at `made`."""
    figures = {(c, (T0 + timedelta(days=d)).date()): Decimal(r) for c, d, r in plan if c == currency}
    dates = [day for (_, day) in figures if valid_from_instant(day) <= made]  # type: ignore[operator]
    if currency == "CNY" or not dates:
        return None
    return Decimal(convert_cents(int(Decimal(amount) * 100), figures[currency, max(dates)])).scaleb(-2)


def _record(crm: CrmApplication, plan: list[tuple[int, int, str, str, str, str]],
            rate_plan: Rates | None = None) -> tuple[list[Purchase], list[OpenDeal]]:
    """Save the deals one after the other (their business times out of order); return the facts."""
    crm.register_customer(RegisterCustomer("大客户", "华东", "制造业", "web", id=CUSTOMER, company="某公司"), at(0))
    rate_plan = rate_plan or []
    _record_rates(crm, rate_plan[:len(rate_plan) // 2])
    purchases, open_deals = [], []
    for opened, days, fate, amount, pipeline, currency in plan:
        deal = crm.open_deal(commands.OpenDeal(CUSTOMER, "项目", amount, pipeline=pipeline, owner="李娜",
                                               currency=currency), at(opened))
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
            made = at(closed).occurred_at
            purchases.append(Purchase(made, Decimal(amount), currency, pipeline, at(closed + 3).occurred_at,
                                      _in_cny(amount, currency, made, rate_plan)))
            closed += 3 + days
        made = at(closed).occurred_at
        purchases.append(Purchase(made, Decimal(amount), currency, pipeline, None,
                                  _in_cny(amount, currency, made, rate_plan)))
    _record_rates(crm, rate_plan[len(rate_plan) // 2:])
    return purchases, open_deals


def _live(store: ReadModelStore) -> list[tuple[object, ...]]:
    return [tuple(row) for row in store.query(LIVE, [str(CUSTOMER)])]


@pytest.mark.parametrize("resume_from", [segments_module.RESUME_FROM, 1], ids=["from the start", "resuming"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(deals, min_size=1, max_size=40), st.lists(st.integers(1, 30), min_size=1, max_size=8), rates)
def test_many_deals_out_of_order_in_any_batches_give_the_timeline_by_definition(
        resume_from: int, plan: list[tuple[int, int, str, str, str, str]], batches: list[int],
        rate_plan: Rates) -> None:
    """`resume_from` 1: every recompute after the first starts from the last interval the batch left."""
    with patch.object(segments_module, "RESUME_FROM", resume_from):
        _check_many_deals(plan, batches, rate_plan)


def _check_many_deals(plan: list[tuple[int, int, str, str, str, str]], batches: list[int],
                      rate_plan: Rates | None = None) -> None:
    crm = CrmApplication(database_from_url("memory://"))
    crm.ensure_default_pipelines(at(-30, "setup"))
    purchases, open_deals = _record(crm, plan, rate_plan)
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
    _record(crm, [(day * 7 % 300, 5, "won", "60000", "sales", "CNY") for day in range(60)])  # 121 events, 60 wins
    store = ReadModelStore(database_from_url("memory://"))

    Projector(crm, store, [SegmentsReadModel()]).catch_up()

    assert recomputes == [60]
    store.close()
