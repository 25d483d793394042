"""The commands (services/commands/): frozen typed data, their addresses, one handler each, and the version
the caller saw carried explicitly from the command to the aggregate's check."""

from __future__ import annotations

import dataclasses
import inspect
from uuid import uuid4

import pytest

import services.commands as commands
from domain.deal import Deal
from domain.pipeline import Pipeline, pipeline_id
from domain.ticket import Ticket
from services.application import _HANDLERS, ConcurrencyConflict, CrmApplication
from services.commands import (AssignTicket, Change, ChangeStage, Command, Creation, OpenTicket, RegisterCustomer,
                               RenameStage)
from tests.conftest import at

BASES = {Command, Creation, Change, commands.CustomerChange, commands.LeadChange, commands.DealChange,
         commands.CampaignChange, commands.TicketChange, commands.PipelineChange, commands.VocabularyChange}
RUNNABLE = [getattr(commands, name) for name in commands.__all__
            if issubclass(getattr(commands, name), Command) and getattr(commands, name) not in BASES]


def _ticket(crm: CrmApplication) -> tuple[object, int]:
    customer = crm.register_customer(RegisterCustomer("张三", "华东", "制造业", "web"), at(0))
    ticket = crm.open_ticket(OpenTicket(customer, "发票开错了", channel="phone"), at(1))
    return ticket, crm.assign_ticket(AssignTicket(ticket, "赵磊"), at(2))  # now at version 2


def test_every_command_has_exactly_one_handler_in_the_application() -> None:
    assert sorted(c.__name__ for c in RUNNABLE) == sorted(c.__name__ for c in _HANDLERS)
    assert all(callable(getattr(CrmApplication, name)) for name in _HANDLERS.values())


def test_a_command_is_frozen_data() -> None:
    command = ChangeStage(uuid4(), "proposal")

    with pytest.raises(dataclasses.FrozenInstanceError):
        command.stage = "won"  # type: ignore[misc]


def test_a_change_names_its_aggregate_and_takes_the_version_only_by_keyword() -> None:
    deal = uuid4()

    command = ChangeStage(deal, "proposal", "客户确认", expected_version=3)

    assert (command.aggregate, command.aggregate_id, command.expected_version) == (Deal, deal, 3)
    assert inspect.signature(ChangeStage).parameters["expected_version"].kind is inspect.Parameter.KEYWORD_ONLY
    assert ChangeStage(deal, "proposal").expected_version is None


def test_a_pipeline_is_addressed_by_its_key() -> None:
    command = RenameStage("sales", "proposal", "报价")

    assert (command.aggregate, command.aggregate_id) == (Pipeline, pipeline_id("sales"))


@pytest.mark.parametrize(("command", "own"), [
    (ChangeStage, ("stage", "reason")),
    (RegisterCustomer, ("name", "company", "region", "industry", "channel", "email", "phone", "campaign_id",
                           "source", "external_id")),
    (RenameStage, ("stage", "label")),
    (commands.CloseTicket, ()),
])
def test_own_fields_are_what_a_caller_sends_without_the_address_the_version_or_a_chosen_id(
        command: type[Command], own: tuple[str, ...]) -> None:
    assert command.own_fields() == own


def test_handle_runs_the_command_by_its_type(crm: CrmApplication) -> None:
    ticket, _ = _ticket(crm)

    version = crm.handle(commands.ChangeTicketStatus(ticket, "in_progress"), at(3))  # type: ignore[arg-type]

    assert (version, crm.get(Ticket, ticket).status) == (3, "in_progress")  # type: ignore[arg-type]


def test_a_stale_expected_version_reaches_the_aggregate_check_and_writes_nothing(crm: CrmApplication) -> None:
    """AssignTicket took its version from a context variable before; now the command carries it."""
    ticket, version = _ticket(crm)
    count = crm.event_count()

    with pytest.raises(ConcurrencyConflict, match=f"ticket {ticket} is at version 2, not the expected 1"):
        crm.handle(AssignTicket(ticket, "王芳", expected_version=version - 1), at(3))  # type: ignore[arg-type]

    assert crm.event_count() == count
    assert crm.handle(AssignTicket(ticket, "王芳", expected_version=version), at(3)) == 3  # type: ignore[arg-type]


def test_a_creation_may_choose_its_id(crm: CrmApplication) -> None:
    chosen = uuid4()

    assert crm.handle(RegisterCustomer("张三", "华东", "制造业", "web", id=chosen), at(0)) == chosen
