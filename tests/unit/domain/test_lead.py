"""Lead: captured, assigned, contacted, qualified, then converted into a customer and deal, or dropped."""

from __future__ import annotations

import re
from uuid import UUID, uuid4

import pytest

from domain.errors import DomainError
from domain.lead import Lead
from domain.vocabulary import Terms, Vocabularies

CAMPAIGN = UUID("00000000-0000-0000-0000-0000000000ca")


@pytest.fixture
def capture(meta_at):
    def make(**overrides) -> Lead:
        kwargs = dict(name="陈静", company=" 上海云帆科技有限公司 ", region="华东", industry="制造业",
                      channel="web", meta=meta_at(0))
        kwargs.update(overrides)
        return Lead.capture(**kwargs)

    return make


@pytest.fixture
def lead(capture) -> Lead:
    return capture()


@pytest.fixture
def qualified_lead(lead, meta_at) -> Lead:
    lead.assign("李娜", "region", meta_at(1))
    lead.contact("phone", "首次电话沟通", meta_at(2))
    lead.qualify("预算和决策人已确认", meta_at(3))
    return lead


def test_capture_starts_new_unassigned_uncontacted(capture):
    lead = capture(contact=" 138-0000-0000 ", campaign_id=CAMPAIGN)
    assert (lead.status, lead.owner, lead.contacted) == ("new", None, False)
    assert (lead.name, lead.company, lead.region, lead.industry) == ("陈静", "上海云帆科技有限公司", "华东", "制造业")
    assert lead.campaign_id == CAMPAIGN
    (captured,) = lead.pending_events
    assert isinstance(captured, Lead.Captured)
    assert captured.contact == "138-0000-0000"
    assert captured.channel == "web"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"channel": "billboard"}, "unknown acquisition channel 'billboard'; expected one of: email, event, partner,"),
        ({"channel": "visit"}, "unknown acquisition channel 'visit'"),  # a touch channel, not an acquisition one
        ({"region": "wang@example.com"}, "region must not hold an e-mail address"),
    ],
)
def test_capture_refusals(capture, overrides, message):
    with pytest.raises(DomainError, match=re.escape(message)):
        capture(**overrides)


def test_a_lead_may_lack_name_region_industry_and_channel(capture):
    """Exports of marketing-qualified leads have none of them: stored as "" (name) and unknown."""
    captured = capture(name=None, region="", industry="  ", channel=None).pending_events[0]

    assert (captured.name, captured.region, captured.industry, captured.channel) == ("", "unknown", "unknown",
                                                                                     "unknown")


def test_capture_checks_the_vocabularies_it_is_given(capture):
    origins = Vocabularies({"acquisition_channel": Terms("acquisition_channel", ("paid_search", "email"), False)})

    assert capture(channel="paid_search", vocabularies=origins).channel == "paid_search"
    with pytest.raises(DomainError, match="unknown acquisition channel 'web'; expected one of: email, paid_search"):
        capture(channel="web", vocabularies=origins)


def test_a_touch_may_lack_its_channel(lead, meta_at):
    lead.assign("王伟", "manual", meta_at(1))
    lead.contact(None, "", meta_at(2))

    assert lead.pending_events[-1].channel == "unknown"


def test_assign_records_owner_and_rule(lead, meta_at):
    lead.assign(" 李娜 ", "industry", meta_at(1))
    assert lead.owner == "李娜"
    event = lead.pending_events[-1]
    assert isinstance(event, Lead.Assigned)
    assert (event.owner, event.rule) == ("李娜", "industry")


def test_assign_refusals(lead, meta_at, refuse):
    refuse(lead, re.escape("unknown assignment rule 'random'; expected one of: industry, manual, region, round_robin"),
           lambda: lead.assign("李娜", "random", meta_at(1)))
    refuse(lead, "owner must not be empty", lambda: lead.assign("", "manual", meta_at(1)))
    lead.assign("李娜", "manual", meta_at(1))
    refuse(lead, "lead is already assigned to '李娜'", lambda: lead.assign("李娜", "manual", meta_at(2)))


def test_reassign_to_another_owner(lead, meta_at):
    lead.assign("李娜", "region", meta_at(1))
    lead.assign("王伟", "manual", meta_at(2))
    assert lead.owner == "王伟"


def test_contacting_before_assignment_is_refused(lead, meta_at, refuse):
    refuse(lead, "assign the lead to an owner before contacting it",
           lambda: lead.contact("phone", "打电话", meta_at(1)))


def test_contact_records_channel_and_summary(lead, meta_at):
    lead.assign("李娜", "region", meta_at(1))
    lead.contact("visit", "上门拜访，见到了采购经理", meta_at(2))
    assert lead.contacted is True
    event = lead.pending_events[-1]
    assert isinstance(event, Lead.Contacted)
    assert (event.channel, event.summary) == ("visit", "上门拜访，见到了采购经理")


def test_contact_refuses_acquisition_only_channel(lead, meta_at, refuse):
    lead.assign("李娜", "region", meta_at(1))
    refuse(lead, "unknown touch channel 'search_ads'", lambda: lead.contact("search_ads", "", meta_at(2)))


def test_qualifying_before_contact_is_refused(lead, meta_at, refuse):
    lead.assign("李娜", "region", meta_at(1))
    refuse(lead, "contact the lead before qualifying it", lambda: lead.qualify("看起来不错", meta_at(2)))


def test_qualify_then_qualify_again_is_refused(qualified_lead, meta_at, refuse):
    assert qualified_lead.status == "qualified"
    assert qualified_lead.pending_events[-1].note == "预算和决策人已确认"
    refuse(qualified_lead, "cannot qualify a qualified lead", lambda: qualified_lead.qualify("", meta_at(4)))


def test_convert_records_customer_and_deal_ids(qualified_lead, meta_at):
    customer_id, deal_id = uuid4(), uuid4()
    qualified_lead.convert(customer_id, deal_id, meta_at(4, correlation_id="convert-1"))
    assert qualified_lead.status == "converted"
    event = qualified_lead.pending_events[-1]
    assert isinstance(event, Lead.Converted)
    assert (event.customer_id, event.deal_id) == (customer_id, deal_id)
    assert event.correlation_id == "convert-1"


def test_converting_a_new_lead_is_refused(lead, meta_at, refuse):
    refuse(lead, "cannot convert a new lead", lambda: lead.convert(uuid4(), uuid4(), meta_at(1)))


def test_converting_a_disqualified_lead_is_refused(lead, meta_at, refuse):
    lead.disqualify("联系方式无效", meta_at(1))
    assert lead.status == "disqualified"
    assert lead.pending_events[-1].reason == "联系方式无效"
    refuse(lead, "cannot convert a disqualified lead", lambda: lead.convert(uuid4(), uuid4(), meta_at(2)))


def test_disqualified_lead_refuses_further_work(lead, meta_at, refuse):
    lead.assign("李娜", "region", meta_at(1))
    lead.disqualify("重复线索", meta_at(2))
    refuse(lead, "cannot assign a disqualified lead", lambda: lead.assign("王伟", "manual", meta_at(3)))
    refuse(lead, "cannot contact a disqualified lead", lambda: lead.contact("email", "", meta_at(3)))
    refuse(lead, "cannot qualify a disqualified lead", lambda: lead.qualify("", meta_at(3)))
    refuse(lead, "cannot disqualify a disqualified lead", lambda: lead.disqualify("再次", meta_at(3)))


def test_converted_lead_is_final(qualified_lead, meta_at, refuse):
    qualified_lead.convert(uuid4(), uuid4(), meta_at(4))
    refuse(qualified_lead, "cannot convert a converted lead",
           lambda: qualified_lead.convert(uuid4(), uuid4(), meta_at(5)))
    refuse(qualified_lead, "cannot disqualify a converted lead",
           lambda: qualified_lead.disqualify("后悔了", meta_at(5)))
    refuse(qualified_lead, "cannot contact a converted lead",
           lambda: qualified_lead.contact("email", "", meta_at(5)))


def test_disqualify_requires_reason(lead, meta_at, refuse):
    refuse(lead, "disqualification reason must not be empty", lambda: lead.disqualify(" ", meta_at(1)))


def test_qualified_lead_can_still_be_disqualified(qualified_lead, meta_at):
    qualified_lead.disqualify("客户预算取消", meta_at(4))
    assert qualified_lead.status == "disqualified"


def test_lead_command_earlier_than_last_event_is_refused(lead, meta_at, refuse):
    lead.assign("李娜", "region", meta_at(2))
    refuse(lead, "is before this Lead's last event", lambda: lead.contact("phone", "", meta_at(1)))


def test_replaying_a_converted_lead(qualified_lead, meta_at, assert_replays):
    customer_id, deal_id = uuid4(), uuid4()
    qualified_lead.convert(customer_id, deal_id, meta_at(4))
    rebuilt = assert_replays(qualified_lead)
    assert (rebuilt.status, rebuilt.owner, rebuilt.contacted) == ("converted", "李娜", True)
    assert rebuilt.version == 5
