"""Which shard a command goes to: its record's home partition; reference data everywhere."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest

from domain.external_ids import external_uuid
from domain.partitions import in_partition, partition_of
from services.application import _HANDLERS
from services.commands import (AddTag, CaptureLead, ChangeStage, ConvertLead, DefinePipeline, InsertStage, OpenDeal,
                               OpenTicket, PlanCampaign, RecordExchangeRate, RecordResponse, RegisterCustomer)
from services.commands.forecasts import AssignTeam, SetStageForecast, SetTarget
from services.commands.vocabularies import AddVocabularyValue
from services.sharding.routing import route


def test_a_new_customer_or_lead_gets_an_id_in_the_chosen_partition() -> None:
    for command in (RegisterCustomer("Ann"), CaptureLead("Bo")):
        chosen = route(command, new_partition=lambda: 42)
        assert chosen.partition == 42
        assert chosen.command.id is not None and partition_of(chosen.command.id) == 42  # type: ignore[attr-defined]


def test_an_imported_record_goes_to_its_derived_ids_partition() -> None:
    command = RegisterCustomer("Ann", source="salesforce", external_id="001A")
    chosen = route(command, new_partition=lambda: pytest.fail("no random partition for an imported record"))
    assert chosen.partition == partition_of(external_uuid("customer", "salesforce", "001A"))
    assert chosen.command is command  # the domain derives the id itself


def test_a_record_with_a_chosen_id_goes_to_its_partition() -> None:
    lead_id = in_partition(7)
    assert route(CaptureLead("Bo", id=lead_id)).partition == 7


def test_deals_and_tickets_go_with_their_customer_and_get_an_id_there() -> None:
    customer = in_partition(13)
    for command in (OpenDeal(customer_id=customer, title="T", amount=Decimal(1), currency="EUR"),
                    OpenTicket(customer, "help")):
        chosen = route(command)
        assert chosen.partition == 13
        assert partition_of(chosen.command.id) == 13  # type: ignore[attr-defined]


def test_changes_go_to_their_records_partition() -> None:
    assert route(AddTag(in_partition(3), "vip")).partition == 3
    assert route(ChangeStage(in_partition(60), "won")).partition == 60


def test_a_conversion_stays_with_its_lead_and_a_response_with_its_respondent() -> None:
    lead = in_partition(21)
    assert route(ConvertLead(lead, "Deal", Decimal(5), "EUR")).partition == 21
    assert route(RecordResponse(uuid4(), "click", lead_id=lead)).partition == 21
    assert route(RecordResponse(uuid4(), "click", customer_id=in_partition(9))).partition == 9
    # naming a lead and the customer it became: on the lead's stream (a legacy customer may live elsewhere)
    assert route(RecordResponse(uuid4(), "click", in_partition(9), lead)).partition == 21


@pytest.mark.parametrize("command", [
    PlanCampaign("Spring", "email", Decimal(100)), DefinePipeline("p", "P", ()), InsertStage("sales", "x", "X"),
    AddVocabularyValue("region", "north"), SetTarget("owner", "李娜", "2026-Q1", "1"), AssignTeam("李娜", "华东一组"),
    SetStageForecast("sales", "proposal", 60, "best_case"),
])
def test_reference_data_has_no_partition(command: object) -> None:
    assert route(command).partition is None  # type: ignore[arg-type]


def test_every_command_the_application_handles_has_a_route() -> None:
    unrouted = []
    for command_type in _HANDLERS:
        try:
            route(command_type.__new__(command_type))
        except AttributeError:
            pass  # reached a field: a route exists, the blank command merely lacks the field
        except TypeError as error:
            unrouted.append(str(error))
    assert not unrouted
    assert RecordExchangeRate in _HANDLERS  # a reference write too
