"""Customer segments as of an instant: the incremental read model and a replay up to T must agree."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from uuid import UUID

import pytest

from projections.segments import Membership, Movement, SegmentQueries, SegmentsReadModel, TierCount, tier_members_sql
from services.application import CrmApplication
from services.commands import (ChangeAmount, ForgetCustomer, LogTouch, LoseDeal, OpenDeal, RegisterCustomer, ReopenDeal,
                               WinDeal)
from services.projection_runtime.projector import Projector
from services.storage.read_model_store import ReadModelStore
from services.projection_runtime.replay import replay_until
from services.settings import database_from_url
from tests.conftest import T0, at

A, B, C, D = (UUID(f"00000000-0000-4000-8000-00000000000{c}") for c in "abcd")
US = timedelta(microseconds=1)
Segments = Callable[[datetime], SegmentQueries]


def day(days: float) -> datetime:
    return T0 + timedelta(days=days)


@pytest.fixture
def live(crm: CrmApplication) -> Iterator[tuple[ReadModelStore, Projector]]:
    store = ReadModelStore(database_from_url("memory://"))
    yield store, Projector(crm, store, [SegmentsReadModel()])
    store.close()


@pytest.fixture
def history(crm: CrmApplication, live: tuple[ReadModelStore, Projector]) -> None:
    """A buys twice (the later deal recorded first, as in an import); B's only deal is lost; C's win is
    undone by reopening the deal, which is then lost; D is forgotten. The read model catches up midway."""
    follower = live[1]
    for customer, channel in ((A, "web"), (B, "event"), (C, "referral"), (D, "social")):
        crm.register_customer(RegisterCustomer(f"客户{customer.hex[-1]}", "华东", "制造业", channel, id=customer,
                                               company="某公司"), at(0))
    for days, channel in ((1, "phone"), (2, "email"), (3, "phone")):
        crm.log_touch(LogTouch(A, channel, "outbound", "跟进"), at(days))
    a1 = crm.open_deal(OpenDeal(A, "一期", "150000", owner="李娜"), at(0))
    b1 = crm.open_deal(OpenDeal(B, "试用", "30000", owner="王伟"), at(2))
    c1 = crm.open_deal(OpenDeal(C, "采购", "60000", owner="王伟"), at(1))
    crm.win_deal(WinDeal(c1), at(3))
    crm.forget_customer(ForgetCustomer(D), at(30))
    follower.catch_up()
    a2 = crm.open_deal(OpenDeal(A, "二期", "80000", owner="李娜"), at(20))
    crm.win_deal(WinDeal(a2), at(40))
    follower.catch_up()
    crm.change_amount(ChangeAmount(a1, "250000"), at(5))
    crm.win_deal(WinDeal(a1), at(10))
    crm.lose_deal(LoseDeal(b1, "预算取消"), at(6))
    crm.reopen_deal(ReopenDeal(c1, "合同撤回"), at(50))
    crm.lose_deal(LoseDeal(c1, "选择了竞争对手"), at(60))


@pytest.fixture(params=["read model", "replay"])
def segments(request: pytest.FixtureRequest, crm: CrmApplication, live: tuple[ReadModelStore, Projector],
             history: None) -> Iterator[Segments]:
    """Queries for an instant: on the incrementally built store, or on a replay of the log up to it."""
    if request.param == "read model":
        live[1].catch_up()
        queries = SegmentQueries(live[0])
        yield lambda instant: queries
        return
    stores: list[ReadModelStore] = []

    def replayed(instant: datetime) -> SegmentQueries:
        stores.append(replay_until(crm, [SegmentsReadModel()], instant))
        return SegmentQueries(stores[-1])

    yield replayed
    for store in stores:
        store.close()


def _scores(segments: Segments, customer: UUID, days: float) -> tuple[object, ...]:
    s = segments(day(days)).segment_of(customer, day(days))
    assert s is not None
    return s.tier, s.recency, s.frequency, s.monetary


def test_segment_of_a_customer_as_of_an_instant(segments: Segments) -> None:
    s = segments(day(45)).segment_of(A, day(45))

    assert s is not None
    assert (s.tier, s.tier_since, s.recency, s.frequency, s.monetary) == ("high_value", day(10), 5, 2, 3)
    assert (s.monetary_cents, s.open_deals, s.last_purchase_at) == (33_000_000, 0, day(40))  # 250,000 + 80,000
    assert (s.preferred_channel, s.preferred_pipeline) == ("phone", "sales")


def test_segments_change_as_purchases_age_with_no_new_event(segments: Segments) -> None:
    assert _scores(segments, A, 100) == ("high_value", 4, 2, 3)
    assert _scores(segments, A, 130) == ("high_value", 4, 2, 3)  # 90 days after the last purchase
    assert _scores(segments, A, 150) == ("potential", 3, 2, 3)
    assert _scores(segments, A, 300) == ("ordinary", 2, 2, 3)
    assert _scores(segments, A, 500) == ("ordinary", 1, 0, 0)  # nothing bought in the last 365 days


def test_a_reopened_deal_stops_counting_as_a_purchase(segments: Segments) -> None:
    won, reopened = segments(day(20)).segment_of(C, day(20)), segments(day(55)).segment_of(C, day(55))

    assert won and (won.tier, won.recency, won.frequency, won.monetary, won.last_purchase_at) == (
        "potential", 5, 1, 2, day(3))
    assert reopened and (reopened.tier, reopened.recency, reopened.open_deals, reopened.last_purchase_at) == (
        "potential", 0, 1, None)  # potential only because the deal is open again
    assert _scores(segments, C, 61) == ("ordinary", 0, 0, 0)


def test_an_open_deal_makes_a_customer_potential_until_it_is_lost(segments: Segments) -> None:
    assert _scores(segments, B, 1) == ("ordinary", 0, 0, 0)
    assert _scores(segments, B, 4) == ("potential", 0, 0, 0)
    assert _scores(segments, B, 7) == ("ordinary", 0, 0, 0)


def test_preferred_channel_is_the_most_frequent_touch_else_the_acquisition_channel(segments: Segments) -> None:
    def channel(customer: UUID, days: float) -> str | None:
        s = segments(day(days)).segment_of(customer, day(days))
        return s and s.preferred_channel

    assert [channel(A, d) for d in (0.5, 1.5, 2.5, 3.5)] == ["web", "phone", "email", "phone"]  # 2.5: tie
    assert channel(B, 7) == "event"


def test_members_of_a_tier_most_valuable_first_with_paging(segments: Segments) -> None:
    queries = segments(day(5))

    assert [m.customer_id for m in queries.members("potential", day(5))] == [C, A, B]  # A and B by id
    assert [m.customer_id for m in queries.members("potential", day(5), limit=2, offset=1)] == [A, B]
    assert [m.customer_id for m in queries.members("ordinary", day(5))] == [D]
    assert queries.members("high_value", day(5)) == []


def test_tier_counts_with_value_and_average_scores(segments: Segments) -> None:
    assert segments(day(5)).tier_counts(day(5)) == [
        TierCount("high_value", 0, 0, None, None, None),
        TierCount("potential", 3, 6_000_000, 5 / 3, 1 / 3, 2 / 3),  # A and B have open deals, C bought
        TierCount("ordinary", 1, 0, 0.0, 0.0, 0.0),
    ]


def test_history_of_memberships_including_changes_due_to_ageing(segments: Segments) -> None:
    assert segments(day(70)).history(A) == [
        Membership("potential", day(0), day(10)),
        Membership("high_value", day(10), day(130) + US),
        Membership("potential", day(130) + US, day(220) + US),
        Membership("ordinary", day(220) + US, None),
    ]
    assert segments(day(70)).history(C) == [
        Membership("ordinary", day(0), day(1)), Membership("potential", day(1), day(60)),
        Membership("ordinary", day(60), None)]


def test_history_as_of_an_instant_shows_only_what_had_begun(segments: Segments) -> None:
    assert segments(day(50)).history(A, day(50)) == [Membership("potential", day(0), day(10)),
                                                     Membership("high_value", day(10), None)]


def test_movements_between_two_instants(segments: Segments) -> None:
    assert segments(day(45)).movements(day(5), day(45)) == [
        Movement("potential", "high_value", 1),  # A bought
        Movement("potential", "ordinary", 1),  # B's deal was lost; C stayed potential
        Movement("ordinary", None, 1),  # D was forgotten
    ]


def test_a_forgotten_customer_leaves_every_segment(segments: Segments) -> None:
    assert segments(day(31)).segment_of(D, day(31)) is None
    assert segments(day(40)).history(D, day(40)) == [Membership("ordinary", day(0), day(30))]


def test_incremental_store_equals_rebuild_and_replay_at_boundaries(crm: CrmApplication, history: None,
                                                                   live: tuple[ReadModelStore, Projector]) -> None:
    store, follower = live
    follower.catch_up()
    rebuilt = ReadModelStore(database_from_url("memory://"))
    Projector(crm, rebuilt, [SegmentsReadModel()]).rebuild()
    for instant in (day(0), day(2.5), day(10) - US, day(10), day(55), day(130), day(130) + US, day(400)):
        replayed = replay_until(crm, [SegmentsReadModel()], instant)
        expected = SegmentQueries(store).summary(instant)
        assert SegmentQueries(rebuilt).summary(instant) == expected, instant
        assert SegmentQueries(replayed).summary(instant) == expected, instant
        replayed.close()
    rebuilt.close()


def test_other_read_models_can_select_a_tier_members_in_sql(history: None, live: tuple[ReadModelStore, Projector]) -> None:
    store, follower = live
    follower.catch_up()
    sql, params = tier_members_sql("potential", day(5))

    found = store.query(f"SELECT customer_id FROM segments_customers WHERE customer_id IN ({sql}) "
                        "ORDER BY customer_id", params)

    assert found == [(str(A),), (str(B),), (str(C),)]
