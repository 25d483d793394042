"""Segments per region, industry, channel or customer property as of an instant: groups add up to the plain
report, each equals the report filtered to its value, properties count as they were then."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from uuid import UUID

import pytest

from domain.errors import DomainError
from projections.segments import SegmentQueries, SegmentsReadModel, TierCount
from services.application import CrmApplication
from services.commands import ChangeCustomerProperties, OpenDeal, RegisterCustomer, WinDeal
from services.projection_runtime.projector import Projector
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import T0, at

A, B, C, D = (UUID(f"00000000-0000-4000-8000-00000000001{c}") for c in "abcd")


def day(days: float) -> datetime:
    return T0 + timedelta(days=days)


@pytest.fixture
def store(crm: CrmApplication) -> Iterator[ReadModelStore]:
    """A and B in 华东, C in 华南, D 's region unknown; A is a large account until day 20, then a small one;
    C a large one from day 10; B and D have none. A, B and C buy; D only registers."""
    for customer, region, channel in ((A, "华东", "web"), (B, "华东", "event"), (C, "华南", "web"), (D, None, "web")):
        crm.register_customer(RegisterCustomer(f"客户{customer.hex[-1]}", region, "制造业", channel, id=customer,
                                               company="某公司"), at(0))
    for customer, amount in ((A, "150000"), (B, "30000"), (C, "60000")):
        crm.win_deal(WinDeal(crm.open_deal(OpenDeal(customer, "一期", amount, owner="李娜"), at(1))), at(2))
    crm.change_customer_properties(ChangeCustomerProperties(A, changes={"account_size": "大客户"}), at(3))
    crm.change_customer_properties(ChangeCustomerProperties(C, changes={"account_size": "大客户"}), at(10))
    crm.change_customer_properties(ChangeCustomerProperties(A, changes={"account_size": "小客户"}), at(20))
    read = ReadModelStore(database_from_url("memory://"))
    Projector(crm, read, [SegmentsReadModel()]).catch_up()
    yield read
    read.close()


def _summed(groups: list[list[TierCount]]) -> list[tuple[str, int, int]]:
    return [(column[0].tier, sum(c.customers for c in column), sum(c.value_cents for c in column))
            for column in zip(*groups)]


@pytest.mark.parametrize("by", ["region", "industry", "channel", "account_size"])
@pytest.mark.parametrize("days", [5, 15, 25])
def test_groups_add_up_to_the_plain_report_and_each_equals_a_filtered_one(store: ReadModelStore, by: str,
                                                                         days: float) -> None:
    queries = SegmentQueries(store)
    groups = queries.grouped_tier_counts(day(days), by)
    plain = queries.tier_counts(day(days))
    assert _summed(list(groups.values())) == [(c.tier, c.customers, c.value_cents) for c in plain]
    for value, counts in groups.items():
        assert counts == queries.tier_counts(day(days), [(by, value)])


def test_a_property_counts_as_it_was_then_and_unknown_where_none(store: ReadModelStore) -> None:
    queries = SegmentQueries(store)

    def customers(days: float) -> dict[str | None, int]:
        return {value: sum(c.customers for c in counts)
                for value, counts in queries.grouped_tier_counts(day(days), "account_size").items()}

    assert customers(5) == {"unknown": 3, "大客户": 1}
    assert customers(15) == {"unknown": 2, "大客户": 2}
    assert customers(25) == {"unknown": 2, "大客户": 1, "小客户": 1}
    assert set(queries.grouped_tier_counts(day(5), "region")) == {"unknown", "华东", "华南"}


def test_filters_combine_and_a_value_nobody_has_gives_empty_tiers(store: ReadModelStore) -> None:
    queries = SegmentQueries(store)
    both = queries.tier_counts(day(25), [("region", "华东"), ("account_size", "小客户")])
    assert sum(c.customers for c in both) == 1
    assert all(c.customers == 0 for c in queries.tier_counts(day(25), [("region", "火星")]))


def test_a_name_that_is_neither_dimension_nor_property_is_refused(store: ReadModelStore) -> None:
    with pytest.raises(DomainError):
        SegmentQueries(store).grouped_tier_counts(day(5), "Bad Name")


def test_incremental_equals_rebuild_with_properties(crm: CrmApplication, store: ReadModelStore) -> None:
    rebuilt = ReadModelStore(database_from_url("memory://"))
    Projector(crm, rebuilt, [SegmentsReadModel()]).rebuild()
    for days in (0, 5, 15, 25):
        expected = SegmentQueries(store).summary(day(days))
        assert ("account_size" in expected["groups"]) == (days >= 3)  # a property set by then
        assert SegmentQueries(rebuilt).summary(day(days)) == expected
    rebuilt.close()
