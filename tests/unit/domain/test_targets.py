"""Targets per owner or team and month or quarter, and an owner's team over time: events with a reason."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from domain.base import Meta
from domain.errors import DomainError
from domain.targets import OwnerTeam, Target, owner_team_id, quarter_months, target_id, target_of_period


def test_a_target_is_one_record_per_scope_name_and_period(meta_at: Callable[..., Meta]) -> None:
    target = Target.set("owner", " 李娜 ", "2026-Q1", "500000", "CNY", "年度计划", meta_at(0))
    assert target.id == target_id("owner", "李娜", "2026-Q1")
    target.change("600000", "CNY", "上调", meta_at(1))
    assert (target.amount, target.version) == (600000, 2)
    with pytest.raises(DomainError, match="already"):
        target.change("600000.00", "CNY", "", meta_at(2))


@pytest.mark.parametrize(("scope", "name", "period", "words"), [
    ("region", "华东", "2026-Q1", "unknown target scope"), ("owner", "李娜", "2026-W10", "not a week"),
    ("owner", "李娜", "2026-Q5", "names no period"), ("team", "a@b.cn", "2026-01", "e-mail"),
    ("owner", " ", "2026-01", "must not be empty")])
def test_a_target_needs_an_owner_or_team_and_a_month_or_quarter(meta_at: Callable[..., Meta], scope: str, name: str,
                                                                 period: str, words: str) -> None:
    with pytest.raises(DomainError, match=words):
        Target.set(scope, name, period, "1", "CNY", "", meta_at(0))


def test_a_quarter_without_its_own_target_sums_its_months() -> None:
    assert quarter_months("2026-Q2") == ["2026-04", "2026-05", "2026-06"]
    amounts = {"2026-04": 100, "2026-06": 50, "2026-Q3": 7, "2026-07": 1000}
    assert target_of_period("2026-Q2", "quarter", amounts) == 150
    assert target_of_period("2026-Q3", "quarter", amounts) == 7  # its own wins over its months'
    assert target_of_period("2026-Q1", "quarter", amounts) is None
    assert target_of_period("2026-05", "month", amounts) is None  # a quarter's target is never split


def test_an_owner_moves_between_teams(meta_at: Callable[..., Meta]) -> None:
    membership = OwnerTeam.assign("李娜", "华东一组", "", meta_at(0))
    assert membership.id == owner_team_id("李娜")
    membership.move("", "离组", meta_at(1))
    assert membership.team == ""
    with pytest.raises(DomainError, match="already in no team"):
        membership.move("  ", "", meta_at(2))
