"""The segment change rule: what is due is the tier now against the tier last announced — entering, leaving on
forgetting, ageing at the exact µs — nothing when they agree; and a change's id is a function of which
announcement of the customer it is (its sequence) and its tiers."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from domain.errors import DomainError
from domain.partitions import partition_of
from domain.segment_change_rules import (LEGACY, NO_TIER, SegmentChange, TierChange, change_id, due_change,
                                         legacy_change_id)
from domain.segmentation import HIGH_VALUE, ORDINARY, POTENTIAL, Purchase, segment_timeline
from tests.conftest import T0, at

CUSTOMER = UUID("0c9a3f6e-55d1-4b7e-9a43-1f2e3d4c5b6a")
MICRO = timedelta(microseconds=1)


def _tier_at(instant, purchases):
    """(tier, since) at `instant` of a customer registered at T0 with these purchases."""
    interval = next(i for i in segment_timeline(T0, None, purchases, [])
                    if i.valid_from <= instant and (i.valid_to is None or instant < i.valid_to))
    return interval.segment.tier, interval.tier_since


def test_a_first_tier_is_entered_from_none() -> None:
    assert due_change(CUSTOMER, NO_TIER, (ORDINARY, T0)) == TierChange(CUSTOMER, "", ORDINARY, T0)


def test_no_change_no_event() -> None:
    assert due_change(CUSTOMER, POTENTIAL, (POTENTIAL, T0 + timedelta(days=3))) is None
    assert due_change(CUSTOMER, NO_TIER, None) is None  # not a customer yet
    assert due_change(CUSTOMER, NO_TIER, None, T0) is None  # forgotten before any announcement: nothing to say


def test_leaving_a_tier_for_another_names_both_and_the_instant_it_was_entered() -> None:
    entered = T0 + timedelta(days=2)
    assert due_change(CUSTOMER, POTENTIAL, (HIGH_VALUE, entered)) == TierChange(CUSTOMER, POTENTIAL, HIGH_VALUE, entered)


def test_a_forgotten_customer_leaves_every_tier_at_the_instant_it_was_forgotten() -> None:
    forgotten = T0 + timedelta(days=9)
    assert due_change(CUSTOMER, HIGH_VALUE, None, forgotten) == TierChange(CUSTOMER, HIGH_VALUE, "", forgotten)


def test_ageing_changes_the_tier_at_the_exact_microsecond() -> None:
    bought = T0 + timedelta(days=1)
    purchases = [Purchase(bought, Decimal(200_000), "CNY", "sales")]  # R 5, F 1, M 3: high value
    limit = bought + timedelta(days=90)  # R 4 up to 90 days inclusive, then 3: potential
    assert due_change(CUSTOMER, HIGH_VALUE, _tier_at(limit, purchases)) is None
    assert due_change(CUSTOMER, HIGH_VALUE, _tier_at(limit + MICRO, purchases)) == \
        TierChange(CUSTOMER, HIGH_VALUE, POTENTIAL, limit + MICRO)
    lapsed = bought + timedelta(days=180) + MICRO  # R 2: ordinary
    assert due_change(CUSTOMER, POTENTIAL, _tier_at(lapsed, purchases)) == \
        TierChange(CUSTOMER, POTENTIAL, ORDINARY, lapsed)


def test_the_id_derives_from_customer_and_sequence_in_the_customers_partition_not_from_the_instant_or_tiers() -> None:
    change = TierChange(CUSTOMER, POTENTIAL, HIGH_VALUE, T0, 2)
    assert change.id == change_id(CUSTOMER, 2)
    assert partition_of(change.id) == partition_of(CUSTOMER)
    # The instant is recomputed from the history as it is now: a repeat of the change at another instant is the
    # same announcement (the same link of the chain), so the same id.
    assert TierChange(CUSTOMER, POTENTIAL, HIGH_VALUE, T0 + MICRO, 2).id == change.id
    # Another tier for the same link (a second process, or one whose read model is further behind) is the same
    # link too: the log refuses it, so a customer's chain cannot fork.
    assert TierChange(CUSTOMER, POTENTIAL, ORDINARY, T0, 2).id == change.id
    others = {change_id(uuid4(), 2), change_id(CUSTOMER, 3), legacy_change_id(CUSTOMER, T0, POTENTIAL, HIGH_VALUE)}
    assert change.id not in others and len(others) == 3
    with pytest.raises(DomainError):
        change_id(CUSTOMER, LEGACY)


def test_the_same_tiers_at_the_same_instant_announced_again_later_in_the_chain_get_another_id() -> None:
    """Review A P1-1: ordinary → potential at day 1 (announcement 1), back to ordinary (2), then a deal entered
    late makes it ordinary → potential at day 1 again (3): not the id of announcement 1, which the log would
    refuse, leaving downstream tools with `ordinary` for good."""
    first, again = TierChange(CUSTOMER, ORDINARY, POTENTIAL, T0, 1), TierChange(CUSTOMER, ORDINARY, POTENTIAL, T0, 3)
    assert first.id != again.id


def test_a_legacy_change_reads_with_the_legacy_sequence() -> None:
    state: dict[str, object] = {}
    SegmentChange.Recorded.upcast_v1_v2(state)
    assert state == {"sequence": LEGACY}


def test_a_due_change_carries_the_count_of_announcements_made() -> None:
    assert due_change(CUSTOMER, ORDINARY, (POTENTIAL, T0), sequence=4) == TierChange(CUSTOMER, ORDINARY, POTENTIAL,
                                                                                      T0, 4)
    assert due_change(CUSTOMER, ORDINARY, None, T0, 4) == TierChange(CUSTOMER, ORDINARY, NO_TIER, T0, 4)


def test_a_recorded_change_carries_customer_tiers_and_instant_and_no_personal_field() -> None:
    from domain.personal_data import PERSONAL_FIELDS

    change = TierChange(CUSTOMER, "", POTENTIAL, T0)
    recorded = SegmentChange.record(change, at(1, "crm segments"))
    assert recorded.id == change.id
    (event,) = recorded.collect_events()
    assert (event.customer_id, event.old_tier, event.new_tier, event.changed_at, event.sequence) == \
        (CUSTOMER, "", POTENTIAL, T0, 0)
    assert SegmentChange.Recorded not in PERSONAL_FIELDS


@pytest.mark.parametrize("old, new", [(POTENTIAL, POTENTIAL), ("", "vip"), ("gold", ORDINARY)])
def test_a_change_needs_two_known_tiers(old: str, new: str) -> None:
    with pytest.raises(DomainError):
        SegmentChange.record(TierChange(CUSTOMER, old, new, T0), at(1))
