"""A campaign's variants (A/B tests): defined with unique keys and positive weights, kept across
redefinitions; exposures, stops and a winner as events; responses and leads naming a variant refused unless
the campaign defines it and has not stopped it."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain import campaign_variants as variant_rules
from domain.campaign import Campaign
from domain.customer import Customer
from domain.errors import DomainError
from domain.lead import Lead

AB = [{"key": "A", "name": "对照：原文案", "copy": "春季新品，限时八折", "channel": "wechat", "weight": 1},
      {"key": "B", "name": "新文案", "copy": "买一送一", "landing_page": "https://example.cn/b", "offer": "买一送一",
       "weight": 1}]


@pytest.fixture
def running(meta_at) -> Campaign:
    campaign = Campaign.plan("春季推广", "event", "1000", "CNY", meta_at(0))
    campaign.define_variants(AB, meta_at(0.5), "首轮测试")
    campaign.launch(meta_at(1))
    return campaign


def test_variants_are_stored_whole_control_first_with_chinese_text(running):
    (defined,) = [e for e in running.collect_events() if isinstance(e, Campaign.VariantsDefined)]
    assert [v["key"] for v in defined.variants] == ["A", "B"]
    assert defined.variants[0] == {"key": "A", "name": "对照：原文案", "copy": "春季新品，限时八折", "channel": "wechat",
                                   "landing_page": "", "offer": "", "weight": 1}
    assert defined.reason == "首轮测试" and running.variant_keys == ("A", "B")


@pytest.mark.parametrize(("variants", "message"), [
    ([{"key": "A", "weight": 1}, {"key": "a", "weight": 2}], "given twice"),
    ([{"key": "A", "weight": 1}, {"key": "B", "weight": 0}], "greater than zero"),
    ([{"key": "A", "weight": 1}, {"key": "B", "weight": -3}], "greater than zero"),
    ([{"key": "A", "weight": 1}, {"key": "B", "weight": 1.5}], "whole number"),
    ([{"key": "A", "weight": 1}, {"key": "B", "weight": True}], "whole number"),
    ([{"key": "A", "weight": 1}, {"key": " ", "weight": 1}], "must not be empty"),
    ([{"key": "A", "weight": 1}, {"key": "B", "weight": 1, "colour": "red"}], "unknown variant field"),
    ([{"key": "A", "weight": 1}], "at least 2"),
    ([{"key": "A" * 33, "weight": 1}, {"key": "B", "weight": 1}], "longer than 32"),
])
def test_bad_variants_are_refused_with_a_sentence(meta_at, variants, message):
    campaign = Campaign.plan("春季推广", "event", "1000", "CNY", meta_at(0))
    with pytest.raises(DomainError, match=message):
        campaign.define_variants(variants, meta_at(1))
    assert campaign.variant_keys == ()


def test_a_redefinition_keeps_every_key_and_may_add_or_reweigh(running, meta_at):
    running.define_variants([*AB, {"key": "C", "weight": 2}], meta_at(2))
    assert running.variant_keys == ("A", "B", "C") and running.variants["C"]["name"] == "C"
    with pytest.raises(DomainError, match="already defined"):
        running.define_variants([AB[0], {"key": "C", "weight": 2}], meta_at(3))
    with pytest.raises(DomainError, match="already defined so"):
        running.define_variants([*AB, {"key": "C", "weight": 2}], meta_at(3))


def test_variants_are_defined_while_planned_or_launched_not_once_closed(running, meta_at):
    running.close(meta_at(2))
    with pytest.raises(DomainError, match="only while a campaign is planned or launched; this one is closed"):
        running.define_variants([*AB, {"key": "C", "weight": 1}], meta_at(3))


def test_exposures_stop_and_winner_are_events_with_actor_and_reason(running, meta_at):
    running.record_exposures("A", 1000, meta_at(2), "邮件群发")
    running.record_exposures("B", "980", meta_at(2))
    running.stop_variant("B", "投诉较多", meta_at(3))
    running.declare_winner("A", "转化率更高", meta_at(4, "王经理"))
    events = running.collect_events()
    exposures = [(e.variant, e.count) for e in events if isinstance(e, Campaign.ExposuresRecorded)]
    assert exposures == [("A", 1000), ("B", 980)]
    assert (events[-2].variant, events[-2].reason) == ("B", "投诉较多")
    assert (events[-1].variant, events[-1].reason, events[-1].actor) == ("A", "转化率更高", "王经理")
    assert running.winner == "A" and running.stopped_variants == {"B"}


@pytest.mark.parametrize(("step", "message"), [
    (lambda c, m: c.record_exposures("Z", 10, m), "defines no variant 'Z'"),
    (lambda c, m: c.record_exposures("A", 0, m), "greater than zero"),
    (lambda c, m: c.stop_variant("Z", "x", m), "defines no variant 'Z'"),
    (lambda c, m: c.stop_variant("A", " ", m), "reason must not be empty"),
    (lambda c, m: c.declare_winner("Z", "x", m), "defines no variant 'Z'"),
    (lambda c, m: c.declare_winner("A", "", m), "reason must not be empty"),
])
def test_steps_naming_no_defined_variant_are_refused(running, meta_at, step, message):
    with pytest.raises(DomainError, match=message):
        step(running, meta_at(2))
    assert not running.collect_events()[3:]


def test_a_stopped_variant_takes_nothing_more_and_cannot_win(running, meta_at):
    running.stop_variant("B", "预算用完", meta_at(2))
    with pytest.raises(DomainError, match="was stopped"):
        running.record_exposures("B", 5, meta_at(3))
    with pytest.raises(DomainError, match="was stopped"):
        running.stop_variant("B", "again", meta_at(3))
    with pytest.raises(DomainError, match="cannot be declared the winner"):
        running.declare_winner("B", "x", meta_at(3))
    lead = Lead.capture("王芳", "", None, None, None, meta_at(3), campaign_id=running.id)
    with pytest.raises(DomainError, match="was stopped"):
        lead.respond_to_campaign(running, "click", meta_at(4), "B")


def test_the_same_winner_twice_is_refused_another_replaces_it(running, meta_at):
    running.declare_winner("A", "初判", meta_at(2))
    with pytest.raises(DomainError, match="already the declared winner"):
        running.declare_winner("A", "再判", meta_at(3))
    running.declare_winner("B", "复核后更正", meta_at(3))
    assert running.winner == "B"


def test_responses_and_leads_carry_a_defined_variant(running, meta_at):
    lead = Lead.capture("王芳", "", None, None, None, meta_at(2), campaign_id=running.id, variant="B",
                        campaign=running)
    lead.respond_to_campaign(running, "click", meta_at(3), "A")
    customer = Customer.register("陈静", "", None, None, None, meta_at(2))
    customer.respond_to_campaign(running, "registration", meta_at(3), "B")
    captured, responded = lead.collect_events()
    assert (captured.variant, responded.variant) == ("B", "A")
    assert customer.collect_events()[-1].variant == "B"


def test_responses_without_a_variant_carry_none(running, meta_at):
    lead = Lead.capture("王芳", "", None, None, None, meta_at(2), campaign_id=running.id)
    lead.respond_to_campaign(running, "click", meta_at(3))
    assert [e.variant for e in lead.collect_events()] == ["", ""]


def test_a_variant_the_campaign_does_not_define_is_refused(running, meta_at):
    customer = Customer.register("陈静", "", None, None, None, meta_at(2))
    with pytest.raises(DomainError, match="defines no variant 'C'"):
        customer.respond_to_campaign(running, "click", meta_at(3), "C")
    with pytest.raises(DomainError, match="defines no variant 'C'"):
        Lead.capture("王芳", "", None, None, None, meta_at(2), campaign_id=running.id, variant="C", campaign=running)
    with pytest.raises(DomainError, match="give the campaign too"):
        Lead.capture("王芳", "", None, None, None, meta_at(2), variant="A")
    with pytest.raises(DomainError, match="give the campaign too"):
        Lead.capture("王芳", "", None, None, None, meta_at(2), campaign_id=uuid4(), variant="A", campaign=running)


def test_older_events_upcast_to_no_variant():
    for event_class in (Lead.RespondedToCampaign, Customer.RespondedToCampaign):
        state: dict[str, object] = {}
        event_class.upcast_v1_v2(state)
        assert state == {"variant": ""}
    state = {}
    Lead.Captured.upcast_v2_v3(state)
    assert state == {"variant": ""} and Lead.Captured.class_version == 3


@pytest.mark.parametrize("count", [10**9 + 1, 2**63, 10**30, "1" + "0" * 5000])
def test_an_exposure_count_above_a_billion_per_record_is_refused(count: object) -> None:
    """Beyond 64 bits the read model, SQLite's SUM and the CloudEvent encoder failed on an accepted count."""
    assert variant_rules.require_count(10**9) == 10**9
    with pytest.raises(DomainError):
        variant_rules.require_count(count)


@pytest.mark.parametrize("weight", [10**6 + 1, 10**30, "9" * 5000])
def test_a_split_weight_above_a_million_parts_is_refused(weight: object) -> None:
    assert variant_rules.require_weight(10**6, "A") == 10**6
    with pytest.raises(DomainError, match="weight"):
        variant_rules.require_weight(weight, "A")


@pytest.mark.parametrize("key", ["A\x1fB", "A\nB", "A\x00", "\x7fB"])
def test_a_variant_key_with_a_control_character_is_refused(key: str) -> None:
    with pytest.raises(DomainError, match="control character"):
        variant_rules.require_key(key)
    assert variant_rules.require_key(" 对照组 ") == "对照组"
