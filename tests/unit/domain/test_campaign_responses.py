"""Responses on the respondent's stream: a lead or a customer responds to a running campaign
(`Lead.RespondedToCampaign`, `Customer.RespondedToCampaign`); the campaign is read, never changed."""

from __future__ import annotations

import pytest

from domain.campaign import Campaign
from domain.customer import Customer
from domain.lead import Lead


@pytest.fixture
def campaign(meta_at) -> Campaign:
    return Campaign.plan("春季新品发布会", "event", "50000", "CNY", meta_at(0))


@pytest.fixture
def respondents(meta_at) -> list[Lead | Customer]:
    return [Lead.capture("王芳", "", "华东", "互联网", "web", meta_at(0)),
            Customer.register("李雷", "", "华东", "互联网", "web", meta_at(0))]


def test_a_lead_or_customer_responds_on_its_own_stream_and_the_campaign_is_unchanged(
        campaign, respondents, meta_at) -> None:
    campaign.launch(meta_at(1))
    campaign.collect_events()
    for respondent in respondents:
        respondent.respond_to_campaign(campaign, "click", meta_at(2))
        event = respondent.collect_events()[-1]
        assert type(event) is type(respondent).RespondedToCampaign
        assert (event.originator_id, event.campaign_id, event.kind) == (respondent.id, campaign.id, "click")
    assert campaign.pending_events == [] and campaign.version == 2


@pytest.mark.parametrize("status", ["planned", "closed"])
def test_only_a_running_campaign_takes_responses(campaign, respondents, meta_at, refuse, status) -> None:
    if status == "closed":
        campaign.launch(meta_at(1))
        campaign.close(meta_at(2))
    for respondent in respondents:
        refuse(respondent, f"responses are recorded only while a campaign runs; this one is {status}",
               lambda r=respondent: r.respond_to_campaign(campaign, "click", meta_at(3)))


def test_an_unknown_kind_or_a_forgotten_customer_is_refused(campaign, respondents, meta_at, refuse) -> None:
    campaign.launch(meta_at(1))
    lead, customer = respondents
    refuse(lead, "unknown response kind 'telepathy'",
           lambda: lead.respond_to_campaign(campaign, "telepathy", meta_at(2)))
    customer.forget(meta_at(2))
    refuse(customer, "customer has been forgotten",
           lambda: customer.respond_to_campaign(campaign, "click", meta_at(3)))


def test_a_response_keeps_its_respondents_business_time_order(campaign, respondents, meta_at, refuse) -> None:
    """As on the campaign's stream before, a response dated before its stream's last event is refused."""
    campaign.launch(meta_at(1))
    lead = respondents[0]
    lead.assign("李娜", "manual", meta_at(5))
    refuse(lead, "is before this Lead's last event", lambda: lead.respond_to_campaign(campaign, "click", meta_at(3)))
