"""Commands make records in their home partition (`domain.partitions`): ConvertLead's customer and deal in the
lead's, OpenDeal's and OpenTicket's record in its customer's; a chosen id elsewhere is refused, writing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from domain.errors import DomainError
from domain.partitions import in_partition, partition_of
from services.application import AlreadyExists, CrmApplication
from services.commands import (AssignLead, CaptureLead, ContactLead, ConvertLead, OpenDeal, OpenTicket, QualifyLead,
                               RegisterCustomer)
from services.settings import database_from_url
from tests.conftest import at


def test_a_converted_lead_its_customer_and_deal_share_the_leads_partition(crm: CrmApplication) -> None:
    for _ in range(10):
        lead = crm.capture_lead(CaptureLead("李雷", "华东", "互联网", "search_ads"), at(0))
        crm.assign_lead(AssignLead(lead, "王伟", "round_robin"), at(0.1))
        crm.contact_lead(ContactLead(lead, "phone", "首次沟通"), at(0.5))
        crm.qualify_lead(QualifyLead(lead, "预算明确"), at(1))
        customer, deal = crm.convert_lead(ConvertLead(lead, "云服务采购", "80000", "CNY"), at(2))
        ticket = crm.open_ticket(OpenTicket(customer, "登录失败", "phone"), at(3))
        assert partition_of(customer) == partition_of(deal) == partition_of(ticket) == partition_of(lead)


def test_a_chosen_id_outside_the_customers_partition_is_refused_and_nothing_written(crm: CrmApplication) -> None:
    customer = crm.register_customer(RegisterCustomer("王芳", "华东", "互联网", "web"), at(0))
    elsewhere = in_partition((partition_of(customer) + 1) % 64)
    before = crm.event_count()
    with pytest.raises(DomainError, match="belongs in partition"):
        crm.open_deal(OpenDeal(customer, "云服务", "1000", id=elsewhere), at(1))
    with pytest.raises(DomainError, match="belongs in partition"):
        crm.open_ticket(OpenTicket(customer, "登录失败", "phone", id=elsewhere), at(1))
    assert crm.event_count() == before
    inside = in_partition(partition_of(customer))
    assert crm.open_deal(OpenDeal(customer, "云服务", "1000", id=inside), at(1)) == inside


@pytest.fixture(params=["memory", "sqlite"])
def any_crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CrmApplication]:
    """The application on the in-memory log and on SQLite (their recorders' `held_ids` differ)."""
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'crm.db'}"
    with closing(CrmApplication(database_from_url(url))) as crm:
        crm.ensure_default_pipelines(at(-30, "setup"))
        yield crm


def test_a_deal_whose_external_id_another_customer_already_has_is_refused(any_crm: CrmApplication) -> None:
    """Its id would differ (another partition), but an external id still names one record."""
    crm = any_crm
    first, second = (crm.register_customer(RegisterCustomer(name, "华东", "互联网", "web"), at(0)) for name in "甲乙")
    deal = crm.open_deal(OpenDeal(first, "云服务", "1000", source="salesforce", external_id="006A"), at(1))
    for customer in (first, second):
        with pytest.raises(AlreadyExists, match=f"external id salesforce:006A already exists \\(id {deal}\\)"):
            crm.open_deal(OpenDeal(customer, "云服务", "1000", source="salesforce", external_id="006A"), at(2))
    crm.open_ticket(OpenTicket(second, "登录失败", "phone", source="zendesk", external_id="1"), at(1))
    with pytest.raises(AlreadyExists):
        crm.open_ticket(OpenTicket(first, "登录失败", "phone", source="zendesk", external_id="1"), at(2))
