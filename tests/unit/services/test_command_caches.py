"""What one process keeps in memory for commands (pipelines, recently saved aggregates) never hides what
another process wrote."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest

from domain.customer import Customer
from domain.deal import Deal
from domain.errors import DomainError
from domain.personal_data import PERSONAL_ATTRIBUTES, PERSONAL_FIELDS
from services.aggregate_cache import CACHED_TYPES, NOT_KEPT, AggregateCache
from services.application import ConcurrencyConflict, CrmApplication
from services.commands import ChangeAmount, ChangeOwner, ChangeStage, InsertStage, OpenDeal, RegisterCustomer
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
    customer = crm.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", company="上海某某"), at(1))
    return crm.open_deal(OpenDeal(customer, "ERP", "1000", owner="李娜"), at(2))


def test_a_stage_inserted_by_another_process_is_accepted(two_processes: tuple[CrmApplication, CrmApplication]) -> None:
    first, second = two_processes
    deal = _deal(first)
    first.change_stage(ChangeStage(deal, "needs_analysis", ""), at(3))  # `first` has now read the sales pipeline

    second.insert_stage(InsertStage("sales", "pilot", "试点", "needs_analysis"), at(4))

    assert first.change_stage(ChangeStage(deal, "pilot", "客户要求试点"), at(5)) == 3
    assert first.get(Deal, deal).stage == "pilot"


def test_an_unknown_stage_is_still_refused_with_the_current_stages(
        two_processes: tuple[CrmApplication, CrmApplication]) -> None:
    first, second = two_processes
    deal = _deal(first)
    first.change_stage(ChangeStage(deal, "needs_analysis", ""), at(3))
    second.insert_stage(InsertStage("sales", "pilot", "试点", "needs_analysis"), at(4))

    with pytest.raises(DomainError, match="unknown stage 'nowhere'.*pilot"):
        first.change_stage(ChangeStage(deal, "nowhere", ""), at(5))


def test_a_deal_changed_by_another_process_is_loaded_at_its_latest_version(
        two_processes: tuple[CrmApplication, CrmApplication]) -> None:
    first, second = two_processes
    deal = _deal(first)
    assert first.get(Deal, deal).version == 1  # `first` has read the deal

    second.change_stage(ChangeStage(deal, "needs_analysis", ""), at(3))

    assert (first.get(Deal, deal).version, first.get(Deal, deal).stage) == (2, "needs_analysis")
    with pytest.raises(ConcurrencyConflict):
        first.change_stage(ChangeStage(deal, "proposal", "", expected_version=1),  # the version `first` saw before
                           at(4))



def test_a_deal_this_process_saved_is_brought_up_to_date_with_another_process_s_changes(
        two_processes: tuple[CrmApplication, CrmApplication]) -> None:
    first, second = two_processes
    deal = _deal(first)
    first.change_stage(ChangeStage(deal, "needs_analysis", ""), at(3))  # `first` keeps the deal it saved at version 2

    second.change_amount(ChangeAmount(deal, "2500"), at(4))
    second.change_stage(ChangeStage(deal, "proposal", ""), at(5))

    assert first.change_owner(ChangeOwner(deal, "王伟", expected_version=4), at(6)) == 5
    assert [type(e).__name__ for e in first.history(deal)] == ["Opened", "StageChanged", "AmountChanged",
                                                              "StageChanged", "OwnerChanged"]
    latest = second.get(Deal, deal)
    assert (latest.stage, latest.amount, latest.owner) == ("proposal", Decimal("2500"), "王伟")
    assert first.change_stage(ChangeStage(deal, "negotiation", ""), at(7)) == 6  # `first`'s copy was a true version 5


def test_a_command_refused_at_save_leaves_nothing_half_changed(
        two_processes: tuple[CrmApplication, CrmApplication]) -> None:
    first, second = two_processes
    deal = _deal(first)
    first.change_stage(ChangeStage(deal, "needs_analysis", ""), at(3))
    pipeline = first.pipeline("sales")

    def change_then_lose_the_race(loaded: Deal) -> None:
        loaded.change_stage(pipeline, "contract_signed", "never saved", at(4))
        second.change_stage(ChangeStage(deal, "proposal", "saved first"), at(4))

    with pytest.raises(ConcurrencyConflict):
        # a racing writer, as between load and save (the command only addresses the deal), against a caller
        # who saw version 2: decided again on the log's version 3, the command is refused
        first._change(ChangeStage(deal, "contract_signed", expected_version=2), change_then_lose_the_race)

    assert first.change_stage(ChangeStage(deal, "negotiation", ""), at(5)) == 4
    assert [(e.from_stage, e.to_stage, e.reason) for e in first.history(deal)[1:]] == [
        ("lead", "needs_analysis", ""), ("needs_analysis", "proposal", "saved first"), ("proposal", "negotiation", "")]


def test_a_kept_deal_is_changed_in_one_round_trip_without_reading_the_log(
        two_processes: tuple[CrmApplication, CrmApplication], monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = two_processes
    deal = _deal(first)
    first.change_stage(ChangeStage(deal, "needs_analysis", ""), at(3))  # kept at version 2
    reads: list[UUID] = []
    select_events = first.recorder.select_events
    monkeypatch.setattr(first.recorder, "select_events", lambda i, **kw: reads.append(i) or select_events(i, **kw))

    assert first.change_stage(ChangeStage(deal, "proposal", ""), at(4)) == 3
    assert first.change_owner(ChangeOwner(deal, "王伟", expected_version=3), at(5)) == 4

    assert reads == []


def test_a_kept_copy_another_process_overtook_is_decided_again_on_the_log(
        two_processes: tuple[CrmApplication, CrmApplication]) -> None:
    first, second = two_processes
    deal = _deal(first)
    first.change_stage(ChangeStage(deal, "needs_analysis", ""), at(3))  # `first` keeps version 2
    second.change_stage(ChangeStage(deal, "proposal", ""), at(4))

    # accepted on the copy (owner unchanged there), refused at save (version 3 taken), decided on the log's
    assert first.change_owner(ChangeOwner(deal, "王伟"), at(5)) == 4
    second.change_stage(ChangeStage(deal, "negotiation", ""), at(6))
    # refused on the copy (already at proposal there), accepted on the log's (at negotiation)
    assert first.change_stage(ChangeStage(deal, "proposal", "back"), at(7)) == 6

    assert [(type(e).__name__, getattr(e, "to_stage", None)) for e in first.history(deal)] == [
        ("Opened", None), ("StageChanged", "needs_analysis"), ("StageChanged", "proposal"), ("OwnerChanged", None),
        ("StageChanged", "negotiation"), ("StageChanged", "proposal")]


def test_no_aggregate_with_personal_data_is_kept_in_memory() -> None:
    kept_by_name = {cached.__name__ for cached in CACHED_TYPES}

    kept_with_personal_data = {event.__qualname__.split(".")[0] for event in PERSONAL_FIELDS} & kept_by_name
    assert kept_with_personal_data == {cls.__name__ for cls in PERSONAL_ATTRIBUTES}  # kept without that data
    cache, customer = AggregateCache(), Customer.register("张三", "", "华东", "零售", "web", at(0))
    cache.keep(customer)
    assert cache.take(customer.id) is None


def test_a_kept_deal_holds_no_plain_copy_of_its_title(tmp_path: Path) -> None:
    app = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'crm.db'}"))
    app.ensure_default_pipelines(at(-1))
    customer = app.register_customer(RegisterCustomer("张三", "华东", "零售", "web"), at(0))
    deal = app.open_deal(OpenDeal(customer, "张三的云服务", "100", owner="李娜"), at(1))
    app.change_stage(ChangeStage(deal, "proposal", "张三 asked for a quote"), at(2))

    kept = app._recent.take(deal)

    assert kept is not None and kept.title == NOT_KEPT
    assert app.get(Deal, deal).title == "张三的云服务"
    app.close()
