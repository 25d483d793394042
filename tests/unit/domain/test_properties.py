"""Named properties of deals, leads and customers: names, values (dimensions, never contact details), changes."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain import properties
from domain.customer import Customer
from domain.deal import Deal
from domain.errors import DomainError
from domain.lead import Lead

CUSTOMER = UUID("00000000-0000-0000-0000-0000000000c1")


@pytest.fixture
def records(sales_pipeline, meta_at) -> dict[str, object]:
    return {
        "deal": Deal.open(sales_pipeline, CUSTOMER, "华东区年度采购", "1000", "CNY", "李娜", meta_at(0)),
        "lead": Lead.capture("王芳", "杭州云启", "华东", "互联网", "event", meta_at(0)),
        "customer": Customer.register("张三", "某公司", "华东", "制造业", "web", meta_at(0)),
    }


@pytest.mark.parametrize("kind", ["deal", "lead", "customer"])
def test_properties_are_set_changed_and_removed_by_events_that_replay(records, kind, meta_at, assert_replays) -> None:
    record = records[kind]
    assert record.properties == {}

    record.change_properties({"product": "GTX Pro", "team": "华东一组"}, meta_at(1))
    record.change_properties({"product": "MG Advanced", "team": ""}, meta_at(2))

    assert record.properties == {"product": "MG Advanced"}
    events = [e for e in record.collect_events() if type(e).__name__ == "PropertiesChanged"]
    assert [e.changes for e in events] == [{"product": "GTX Pro", "team": "华东一组"}, {"product": "MG Advanced",
                                                                                   "team": ""}]
    assert type(events[0]).__qualname__ == f"{type(record).__name__}.PropertiesChanged"


@pytest.mark.parametrize("kind", ["deal", "lead", "customer"])
def test_the_events_replay_to_the_same_properties(records, kind, meta_at, replay) -> None:
    record = records[kind]
    record.change_properties({"office": "上海", "account_size": "大型"}, meta_at(1))
    record.change_properties({"office": ""}, meta_at(2))

    assert replay(record.collect_events()).properties == {"account_size": "大型"}


def test_only_the_changes_that_change_something_are_recorded(records, meta_at) -> None:
    deal = records["deal"]
    deal.change_properties({"product": "GTX"}, meta_at(1))

    deal.change_properties({"product": "GTX", "team": "A组", "office": ""}, meta_at(2))

    assert deal.collect_events()[-1].changes == {"team": "A组"}
    with pytest.raises(DomainError, match="properties are unchanged"):
        deal.change_properties({"product": " GTX ", "manager": ""}, meta_at(3))


@pytest.mark.parametrize("name", ["Product", "1st", "product-line", "产品", "a" * 41, ""])
def test_a_name_must_be_lower_case_letters_digits_and_underscores(records, name, meta_at) -> None:
    with pytest.raises(DomainError, match="must be 1–40 lower-case letters"):
        records["deal"].change_properties({name: "x"}, meta_at(1))


@pytest.mark.parametrize("name", ["owner", "region", "industry", "channel", "campaign", "cohort"])
def test_names_the_funnel_groups_by_on_its_own_are_reserved(records, name, meta_at) -> None:
    with pytest.raises(DomainError, match="is reserved"):
        records["deal"].change_properties({name: "x"}, meta_at(1))


@pytest.mark.parametrize("value", ["wang@example.com", "+86 138 0013 8000", "13800138000"])
def test_a_value_is_a_dimension_and_may_not_hold_contact_details(records, value, meta_at) -> None:
    with pytest.raises(DomainError, match="must not hold an e-mail address or a phone number"):
        records["lead"].change_properties({"manager": value}, meta_at(1))


@pytest.mark.parametrize("changes, reason", [
    ({}, "at least one property"),
    ({"product": 5}, "must be text"),
    ({"product": "x" * 201}, "at most 200 characters"),
    ({f"p{i}": "x" for i in range(51)}, "at most 50 properties"),
    ({"product": "a\x00b"}, "NUL"),
])
def test_other_bad_changes_are_refused(records, changes, reason, meta_at) -> None:
    with pytest.raises(DomainError, match=reason):
        records["customer"].change_properties(changes, meta_at(1))


def test_the_well_known_names_are_ordinary_names() -> None:
    assert all(properties.require_name(name) == name for name in properties.WELL_KNOWN)


def test_a_forgotten_customer_keeps_its_properties_but_they_no_longer_change(records, meta_at) -> None:
    customer = records["customer"]
    customer.change_properties({"account_size": "大型"}, meta_at(1))
    customer.forget(meta_at(2))

    assert customer.properties == {"account_size": "大型"}  # a dimension, not personal data
    with pytest.raises(DomainError, match="forgotten"):
        customer.change_properties({"account_size": "小型"}, meta_at(3))


def test_properties_of_a_closed_deal_can_still_be_corrected(records, meta_at) -> None:
    deal = records["deal"]
    deal.win(meta_at(1))

    deal.change_properties({"product": "GTX"}, meta_at(2))

    assert deal.properties == {"product": "GTX"}
