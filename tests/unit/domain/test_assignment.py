"""Lead assignment policy: industry specialist first, then the region's owner, else round-robin."""

from __future__ import annotations

import re

import pytest

from domain.assignment import AssignmentPolicy
from domain.errors import DomainError
from domain.lead import Lead

POLICY = AssignmentPolicy(
    by_industry={"金融": "钱多多"},
    by_region={"华东": "李娜", "华南": "王伟"},
    round_robin=("张三", "李四", "王五"),
)


def test_industry_specialist_wins_over_region():
    assert POLICY.choose("华东", "金融", turn=0) == ("钱多多", "industry")


def test_region_owner_when_no_industry_specialist():
    assert POLICY.choose("华南", "制造业", turn=0) == ("王伟", "region")


def test_round_robin_cycles_by_turn():
    picks = [POLICY.choose("西北", "教育", turn=t) for t in range(5)]
    assert picks == [("张三", "round_robin"), ("李四", "round_robin"), ("王五", "round_robin"),
                     ("张三", "round_robin"), ("李四", "round_robin")]


def test_no_match_and_no_round_robin_is_refused():
    policy = AssignmentPolicy(by_region={"华东": "李娜"})
    with pytest.raises(DomainError, match=re.escape("no owner for region '西北' / industry '教育' and no round-robin list")):
        policy.choose("西北", "教育", turn=3)


def test_rules_returned_are_valid_lead_assignment_rules(meta_at):
    lead = Lead.capture("陈静", "", "西北", "教育", "web", meta_at(0))
    owner, rule = POLICY.choose(lead.region, lead.industry, turn=1)
    lead.assign(owner, rule, meta_at(1))
    assert (lead.owner, lead.pending_events[-1].rule) == ("李四", "round_robin")
