"""Records are made in their home partition (`domain.partitions`): a lead and a customer registered directly at
random, a customer converted from a lead in the lead's, deals and tickets in their customer's; an imported
deal's or ticket's id stays deterministic and lands there too; an explicit id elsewhere is refused."""

from __future__ import annotations

from collections import Counter
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from domain.customer import Customer
from domain.deal import Deal
from domain.errors import DomainError
from domain.external_ids import external_uuid, imported_id
from domain.lead import Lead
from domain.partitions import PARTITIONS, in_partition, partition_of
from domain.ticket import Ticket

EXTERNAL_IDS = st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=1, max_size=20)


def _customer(meta_at, **given_fields) -> Customer:
    return Customer.register("王芳", "", "华东", "互联网", "web", meta_at(0), **given_fields)


def _deal(sales_pipeline, meta_at, customer: UUID, **given_fields) -> Deal:
    return Deal.open(sales_pipeline, customer, "云服务", "1000", "CNY", "李娜", meta_at(1), **given_fields)


def _ticket(meta_at, customer: UUID, **given_fields) -> Ticket:
    return Ticket.open(customer, "登录失败", "high", "phone", meta_at(1), **given_fields)


def test_leads_and_customers_registered_directly_spread_over_every_partition(meta_at) -> None:
    leads = Counter(partition_of(Lead.capture("王芳", "", "华东", "互联网", "web", meta_at(0)).id) for _ in range(2000))
    customers = Counter(partition_of(_customer(meta_at).id) for _ in range(2000))
    assert len(leads) == len(customers) == PARTITIONS  # 2,000 random ids miss a partition with p ≈ 10⁻¹⁰


def test_a_customer_converted_from_a_lead_is_made_in_the_leads_partition(meta_at) -> None:
    lead = Lead.capture("王芳", "", "华东", "互联网", "web", meta_at(0))
    for _ in range(50):
        assert partition_of(_customer(meta_at, partition=partition_of(lead.id)).id) == partition_of(lead.id)


def test_deals_and_tickets_are_made_in_their_customers_partition(sales_pipeline, meta_at) -> None:
    for _ in range(50):
        customer = uuid4()
        assert partition_of(_deal(sales_pipeline, meta_at, customer).id) == partition_of(customer)
        assert partition_of(_ticket(meta_at, customer).id) == partition_of(customer)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # the fixtures are constants
@given(customer=st.uuids(), external_id=EXTERNAL_IDS)
def test_an_imported_deals_or_tickets_id_is_deterministic_and_in_its_customers_partition(
        sales_pipeline, meta_at, customer: UUID, external_id: str) -> None:
    kept = f"salesforce:{external_id}"
    deal = _deal(sales_pipeline, meta_at, customer, external_id=kept)
    ticket = _ticket(meta_at, customer, external_id=kept)
    assert deal.id == _deal(sales_pipeline, meta_at, customer, external_id=kept).id == imported_id("deal", kept,
                                                                                                    partition_of(customer))
    assert deal.id == in_partition(partition_of(customer), external_uuid("deal", "salesforce", external_id))
    assert ticket.id == in_partition(partition_of(customer), external_uuid("ticket", "salesforce", external_id))
    assert partition_of(deal.id) == partition_of(ticket.id) == partition_of(customer)


def test_an_explicit_id_in_the_customers_partition_is_kept(sales_pipeline, meta_at) -> None:
    customer = uuid4()
    chosen = in_partition(partition_of(customer))
    assert _deal(sales_pipeline, meta_at, customer, id=chosen).id == chosen
    assert _ticket(meta_at, customer, id=chosen).id == chosen
    assert _customer(meta_at, partition=partition_of(customer), id=chosen).id == chosen


def test_an_explicit_id_outside_its_parents_partition_is_refused_saying_which(sales_pipeline, meta_at) -> None:
    customer = in_partition(5)
    elsewhere = in_partition(6)
    with pytest.raises(DomainError, match=f"id {elsewhere} is in home partition 6, but this deal belongs in "
                                          r"partition 5 \(its customer's"):
        _deal(sales_pipeline, meta_at, customer, id=elsewhere)
    with pytest.raises(DomainError, match="but this ticket belongs in partition 5"):
        _ticket(meta_at, customer, id=elsewhere)
    with pytest.raises(DomainError, match=r"but this customer belongs in partition 5 \(its lead's"):
        _customer(meta_at, partition=5, id=elsewhere)
    assert _customer(meta_at, id=elsewhere).id == elsewhere  # registered directly: any partition


def test_an_imported_deals_old_unplaced_id_is_refused_from_a_command(sales_pipeline, meta_at) -> None:
    """The id a deal with this external id had before home partitions is not accepted from outside."""
    customer = in_partition(5)
    legacy = external_uuid("deal", "salesforce", "006A")
    assert partition_of(legacy) == 11  # its own low bits
    with pytest.raises(DomainError, match="is not the id of deal salesforce:006A"):
        _deal(sales_pipeline, meta_at, customer, id=legacy, external_id="salesforce:006A")
