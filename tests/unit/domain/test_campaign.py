"""Campaign: planned with a budget, launched, costs and responses recorded, then closed."""

from __future__ import annotations

import re
from decimal import Decimal
from uuid import uuid4

import pytest

from domain.campaign import Campaign
from domain.errors import DomainError


@pytest.fixture
def plan(meta_at):
    def make(**overrides) -> Campaign:
        kwargs = dict(name="2026 春季新品发布会", channel="event", budget="50000.00", currency="CNY", meta=meta_at(0))
        kwargs.update(overrides)
        return Campaign.plan(**kwargs)

    return make


@pytest.fixture
def campaign(plan) -> Campaign:
    return plan()


@pytest.fixture
def running(campaign, meta_at) -> Campaign:
    campaign.launch(meta_at(1))
    return campaign


def test_plan_sets_budget_and_starts_planned(campaign):
    assert (campaign.name, campaign.channel, campaign.currency) == ("2026 春季新品发布会", "event", "CNY")
    assert campaign.budget == Decimal("50000.00")
    assert campaign.cost == Decimal(0)
    assert campaign.status == "planned"
    assert isinstance(campaign.pending_events[0], Campaign.Planned)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"budget": 5000.0}, "budget must be a decimal string or integer, not float"),
        ({"budget": "-1"}, "budget must not be negative (got -1)"),
        ({"budget": "nan"}, "budget must be finite"),
        ({"currency": "usd"}, "currency 'usd' must be a three-letter ISO code"),
        ({"channel": "visit"}, "unknown campaign channel 'visit'; expected one of:"),
        ({"name": ""}, "campaign name must not be empty"),
    ],
)
def test_plan_refusals(plan, overrides, message):
    with pytest.raises(DomainError, match=re.escape(message)):
        plan(**overrides)


def test_zero_budget_is_allowed(plan):
    assert plan(budget=0).budget == Decimal(0)


def test_response_before_launch_is_refused(campaign, meta_at, refuse):
    refuse(campaign, "responses are recorded only while a campaign runs; this one is planned",
           lambda: campaign.record_response("click", meta_at(1), lead_id=uuid4()))


def test_response_after_close_is_refused(running, meta_at, refuse):
    running.close(meta_at(2))
    assert running.status == "closed"
    refuse(running, "responses are recorded only while a campaign runs; this one is closed",
           lambda: running.record_response("click", meta_at(3), customer_id=uuid4()))


def test_response_must_name_customer_or_lead(running, meta_at, refuse):
    refuse(running, "a response names the customer or the lead who responded",
           lambda: running.record_response("registration", meta_at(2)))


def test_response_kind_must_be_known(running, meta_at, refuse):
    refuse(running, re.escape("unknown response kind 'like'; expected one of: attendance, click, impression,"),
           lambda: running.record_response("like", meta_at(2), lead_id=uuid4()))


def test_response_records_kind_and_who(running, meta_at):
    customer_id, lead_id = uuid4(), uuid4()
    running.record_response("attendance", meta_at(2), customer_id=customer_id)
    running.record_response("registration", meta_at(2), lead_id=lead_id)
    attended, registered = running.pending_events[-2:]
    assert isinstance(attended, Campaign.ResponseRecorded)
    assert (attended.kind, attended.customer_id, attended.lead_id) == ("attendance", customer_id, None)
    assert (registered.kind, registered.customer_id, registered.lead_id) == ("registration", None, lead_id)


@pytest.mark.parametrize("zero", [0, "0", "0.00", "-0"])
def test_zero_cost_is_refused(campaign, meta_at, refuse, zero):
    refuse(campaign, "cost must be greater than zero", lambda: campaign.record_cost(zero, meta_at(1)))


@pytest.mark.parametrize(
    ("value", "message"),
    [("-100", "cost must not be negative (got -100)"), (0.1, "cost must be a decimal string or integer, not float"),
     ("Infinity", "cost must be finite"), ("一百", "cost '一百' is not a number")],
)
def test_bad_cost_is_refused(campaign, meta_at, refuse, value, message):
    refuse(campaign, re.escape(message), lambda: campaign.record_cost(value, meta_at(1)))


def test_costs_accumulate_exactly(running, meta_at):
    running.record_cost("0.10", meta_at(2), note="场地定金")
    running.record_cost("0.20", meta_at(3))
    running.record_cost(1000, meta_at(4), note="展台搭建")
    assert running.cost == Decimal("1000.30")
    event = running.pending_events[-3]
    assert isinstance(event, Campaign.CostRecorded)
    assert (event.amount, event.note) == (Decimal("0.10"), "场地定金")


def test_launch_and_close_transitions(campaign, meta_at, refuse):
    refuse(campaign, "only a running campaign can be closed; this one is planned", lambda: campaign.close(meta_at(1)))
    campaign.launch(meta_at(1))
    assert campaign.status == "launched"
    refuse(campaign, "only a planned campaign can be launched; this one is launched", lambda: campaign.launch(meta_at(2)))
    campaign.close(meta_at(2))
    refuse(campaign, "only a running campaign can be closed; this one is closed", lambda: campaign.close(meta_at(3)))
    refuse(campaign, "only a planned campaign can be launched; this one is closed", lambda: campaign.launch(meta_at(3)))


def test_campaign_command_earlier_than_last_event_is_refused(running, meta_at, refuse):
    refuse(running, "is before this Campaign's last event",
           lambda: running.record_response("click", meta_at(0.5), lead_id=uuid4()))


def test_replaying_a_campaign(running, meta_at, assert_replays):
    running.record_cost("12000.50", meta_at(2))
    running.record_response("click", meta_at(3), lead_id=uuid4())
    running.record_cost("3000", meta_at(4))
    running.close(meta_at(5))
    rebuilt = assert_replays(running)
    assert (rebuilt.status, rebuilt.cost, rebuilt.budget) == ("closed", Decimal("15000.50"), Decimal("50000.00"))
    assert rebuilt.version == 6
