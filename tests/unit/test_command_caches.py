"""What one process keeps in memory for commands (the pipelines) never hides what another process wrote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from domain.deal import Deal
from domain.errors import DomainError
from services.application import ConcurrencyConflict, CrmApplication
from services.settings import database_from_url
from tests.conftest import at


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[tuple[CrmApplication, CrmApplication]]:
    """Two applications on one SQLite log, as two server processes would be."""
    database = database_from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    first, second = CrmApplication(database), CrmApplication(database)
    first.ensure_default_pipelines(at(0))
    yield first, second
    first.close()
    second.close()


def _deal(crm: CrmApplication) -> UUID:
    customer = crm.register_customer("张三", "上海某某", "华东", "制造业", "web", at(1))
    return crm.open_deal("sales", customer, "ERP", "1000", "CNY", "李娜", at(2))


def test_a_stage_inserted_by_another_process_is_accepted(two_processes: tuple[CrmApplication, CrmApplication]) -> None:
    first, second = two_processes
    deal = _deal(first)
    first.change_stage(deal, "needs_analysis", "", at(3))  # `first` has now read the sales pipeline

    second.insert_stage("sales", "pilot", "试点", "needs_analysis", at(4))

    assert first.change_stage(deal, "pilot", "客户要求试点", at(5)) == 3
    assert first.get(Deal, deal).stage == "pilot"


def test_an_unknown_stage_is_still_refused_with_the_current_stages(
        two_processes: tuple[CrmApplication, CrmApplication]) -> None:
    first, second = two_processes
    deal = _deal(first)
    first.change_stage(deal, "needs_analysis", "", at(3))
    second.insert_stage("sales", "pilot", "试点", "needs_analysis", at(4))

    with pytest.raises(DomainError, match="unknown stage 'nowhere'.*pilot"):
        first.change_stage(deal, "nowhere", "", at(5))


def test_a_deal_changed_by_another_process_is_loaded_at_its_latest_version(
        two_processes: tuple[CrmApplication, CrmApplication]) -> None:
    first, second = two_processes
    deal = _deal(first)
    assert first.get(Deal, deal).version == 1  # `first` has read the deal

    second.change_stage(deal, "needs_analysis", "", at(3))

    assert (first.get(Deal, deal).version, first.get(Deal, deal).stage) == (2, "needs_analysis")
    with pytest.raises(ConcurrencyConflict):
        first.change_stage(deal, "proposal", "", at(4), expected_version=1)  # the version `first` saw before

