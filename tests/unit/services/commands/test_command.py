"""Creation commands with `source` and `external_id`: the id derives from them, an explicit id that differs is
refused, a second record with the same external id is refused (AlreadyExists), and one of them alone is refused."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.customer import Customer
from domain.errors import DomainError
from domain.external_ids import external_uuid, imported_id
from domain.partitions import in_partition, partition_of
from services.application import AlreadyExists, ConcurrencyConflict, CrmApplication
from services.commands import CaptureLead, OpenDeal, OpenTicket, PlanCampaign, RegisterCustomer
from tests.conftest import at

SF = {"source": "salesforce", "external_id": "001Dn00000XyZ"}


def test_a_creation_with_an_external_id_gets_the_derived_id_and_keeps_source_colon_id(crm: CrmApplication) -> None:
    customer = crm.register_customer(RegisterCustomer("王芳", "华东", "互联网", "web", **SF), at(0))
    assert customer == external_uuid("customer", "salesforce", "001Dn00000XyZ")
    assert crm.get(Customer, customer).external_id == "salesforce:001Dn00000XyZ"
    assert RegisterCustomer("王芳", "华东", "互联网", "web").kept_external_id() == ""


def test_each_creation_command_derives_its_own_kind_of_id(crm: CrmApplication) -> None:
    crm.ensure_default_pipelines(at(-1))
    elsewhere = (partition_of(external_uuid("deal", "hubspot", "7")) + 1) % 64  # not the key's own bits
    customer = crm.register_customer(RegisterCustomer("王芳", "华东", "互联网", "web", id=in_partition(elsewhere)), at(0))
    made = {
        "lead": crm.capture_lead(CaptureLead("王芳", "华东", "互联网", "web", source="hubspot", external_id="7"), at(0)),
        "deal": crm.open_deal(OpenDeal(customer, "云服务", "1000", source="hubspot", external_id="7"), at(1)),
        "ticket": crm.open_ticket(OpenTicket(customer, "登录失败", "phone", source="hubspot", external_id="7"), at(1)),
        "campaign": crm.plan_campaign(PlanCampaign("春季活动", "event", "1000", source="hubspot", external_id="7"),
                                      at(0)),
    }
    home = {"deal": partition_of(customer), "ticket": partition_of(customer)}  # their customer's partition
    assert made == {kind: imported_id(kind, "hubspot:7", home.get(kind)) for kind in made}
    assert made["deal"] != external_uuid("deal", "hubspot", "7")


def test_creating_a_record_whose_external_id_exists_is_refused_saying_which(crm: CrmApplication) -> None:
    first = crm.register_customer(RegisterCustomer("王芳", "华东", "互联网", "web", **SF), at(0))
    count = crm.event_count()
    with pytest.raises(AlreadyExists, match=f"external id salesforce:001Dn00000XyZ already exists \\(id {first}\\)"):
        crm.register_customer(RegisterCustomer("王芳二", "华南", "零售", "web", **SF), at(1))
    assert crm.event_count() == count
    assert issubclass(AlreadyExists, ConcurrencyConflict)  # 409 on HTTP, exit 1 on the CLI


def test_an_explicit_id_that_disagrees_is_refused_and_one_that_agrees_is_taken(crm: CrmApplication) -> None:
    with pytest.raises(DomainError, match="is not the id of customer salesforce:001Dn00000XyZ"):
        crm.register_customer(RegisterCustomer("王芳", "华东", "互联网", "web", id=uuid4(), **SF), at(0))
    derived = external_uuid("customer", "salesforce", "001Dn00000XyZ")
    again = RegisterCustomer("王芳", "华东", "互联网", "web", id=derived, **SF)
    assert crm.register_customer(again, at(0)) == derived


@pytest.mark.parametrize("half", [{"source": "salesforce"}, {"external_id": "001"}])
def test_a_source_without_an_external_id_or_the_reverse_is_refused(crm: CrmApplication, half: dict[str, str]) -> None:
    count = crm.event_count()
    with pytest.raises(DomainError, match="give both source and external_id"):
        crm.register_customer(RegisterCustomer("王芳", "华东", "互联网", "web", **half), at(0))
    assert crm.event_count() == count
