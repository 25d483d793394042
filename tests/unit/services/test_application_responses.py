"""RecordResponse on the respondent's stream: checked against the campaign (exists, launched), saved on the
lead's or customer's stream, never on the campaign's — so two responses to one campaign never conflict."""

from __future__ import annotations

import pytest

from domain.campaign import Campaign
from domain.customer import Customer
from domain.errors import DomainError
from domain.lead import Lead
from services.application import CrmApplication, NotFound
from services.command_receipts import Receipt
from services.commands import (AssignLead, CaptureLead, CloseCampaign, ContactLead, ConvertLead, LaunchCampaign,
                               PlanCampaign, QualifyLead, RecordResponse, RegisterCustomer)
from tests.conftest import at


@pytest.fixture
def campaign(crm: CrmApplication):
    campaign = crm.plan_campaign(PlanCampaign("春季新品发布会", "event", "10000"), at(0))
    crm.launch_campaign(LaunchCampaign(campaign), at(0.5))
    return campaign


def _lead(crm: CrmApplication, name: str = "王芳"):
    return crm.capture_lead(CaptureLead(name, "华东", "互联网", "web"), at(1))


def _last(crm: CrmApplication, aggregate_id) -> object:
    return crm.history(aggregate_id)[-1]


def test_a_response_is_saved_on_the_leads_or_customers_stream_and_the_campaign_stays_as_it_was(
        crm: CrmApplication, campaign) -> None:
    lead, customer = _lead(crm), crm.register_customer(RegisterCustomer("李雷", "华东", "互联网", "web"), at(1))
    assert crm.record_response(RecordResponse(campaign, "click", lead_id=lead), at(2)) == 2  # the campaign's
    assert crm.record_response(RecordResponse(campaign, "reply", customer), at(2)) == 2  # version, unchanged
    assert isinstance(_last(crm, lead), Lead.RespondedToCampaign)
    assert isinstance(_last(crm, customer), Customer.RespondedToCampaign)
    assert (_last(crm, customer).campaign_id, _last(crm, customer).kind) == (campaign, "reply")
    assert crm.get(Campaign, campaign).version == 2


def test_a_lead_and_the_customer_it_became_respond_on_the_leads_stream(crm: CrmApplication, campaign) -> None:
    lead = _lead(crm)
    crm.assign_lead(AssignLead(lead, "王伟", "manual"), at(1))
    crm.contact_lead(ContactLead(lead, "phone", ""), at(1))
    crm.qualify_lead(QualifyLead(lead, ""), at(1))
    customer, _ = crm.convert_lead(ConvertLead(lead, "云服务", "1000", "CNY"), at(2))
    crm.record_response(RecordResponse(campaign, "reply", customer, lead), at(3))
    assert isinstance(_last(crm, lead), Lead.RespondedToCampaign)
    other = crm.register_customer(RegisterCustomer("李雷", "华东", "互联网", "web"), at(1))
    with pytest.raises(DomainError, match=f"lead {lead} was not converted into customer {other}"):
        crm.record_response(RecordResponse(campaign, "reply", other, lead), at(4))


def test_a_response_to_an_unknown_planned_or_closed_campaign_is_refused_and_nothing_written(
        crm: CrmApplication, campaign) -> None:
    lead = _lead(crm)
    planned = crm.plan_campaign(PlanCampaign("秋季活动", "event", "1000"), at(0))
    before = crm.event_count()
    with pytest.raises(NotFound):
        crm.record_response(RecordResponse(lead, "click", lead_id=lead), at(2))
    with pytest.raises(DomainError, match="only while a campaign runs; this one is planned"):
        crm.record_response(RecordResponse(planned, "click", lead_id=lead), at(2))
    with pytest.raises(DomainError, match="names the customer or the lead"):
        crm.record_response(RecordResponse(campaign, "click"), at(2))
    assert crm.event_count() == before
    crm.close_campaign(CloseCampaign(campaign), at(3))
    with pytest.raises(DomainError, match="this one is closed"):
        crm.record_response(RecordResponse(campaign, "click", lead_id=lead), at(4))


def test_two_responses_to_one_campaign_saved_at_once_both_succeed(crm: CrmApplication, campaign) -> None:
    """Two commands that each read the campaign, then commit in turn: before home partitions both appended
    the campaign's next version and the second failed as a concurrent write."""
    leads = [_lead(crm, name) for name in ("王芳", "李雷")]
    views = [crm.staged(), crm.staged()]
    for view, lead in zip(views, leads):
        view.record_response(RecordResponse(campaign, "click", lead_id=lead), at(2))
    for number, view in enumerate(views):
        view.commit(Receipt("市场部", f"k{number}", "print", 200, b"{}", {}))
    assert [type(_last(crm, lead)) for lead in leads] == [Lead.RespondedToCampaign] * 2
