"""Which shard a command belongs to: its record's home partition (domain/partitions.py), read from the ids
the command carries, or "reference" for data every shard holds.

A change goes where its record lives, `partition_of(aggregate_id)`. A new customer or lead gets its id here
when the command names none — in a random partition (`secrets.randbelow`: records spread evenly over the
shards) — so that the shard's application creates it where later commands will look; with an external id its
id is the one the domain derives (a uuid5), and so is its partition. Deals and tickets go with their customer,
a lead's conversion with the lead (the customer and deal it creates are written in the same transaction, so a
multi-aggregate command never spans shards), a campaign response with its respondent. Pure: no database.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.external_ids import record_id
from domain.partitions import PARTITIONS, in_partition, is_reference, partition_of
from services.commands import (CaptureLead, Change, Command, ConvertLead, DefinePipeline, OpenDeal, OpenTicket,
                               PlanCampaign, RecordExchangeRate, RecordResponse, RegisterCustomer)

NEW_PARTIES: dict[type[Command], str] = {RegisterCustomer: "customer", CaptureLead: "lead"}  # → external id kind
WITH_CUSTOMER = (OpenDeal, OpenTicket)  # created in their customer's partition
REFERENCE_CREATIONS = (PlanCampaign, DefinePipeline, RecordExchangeRate)


class Unroutable(TypeError):
    """A command type nobody taught the router (a new command must say where it goes)."""


@dataclass(frozen=True)
class Route:
    """Where `command` goes: a home partition, or None for reference data (every shard, the default first).
    `command` is the one to run: the asked one, or a creation given an id in its partition."""

    partition: int | None
    command: Command


def random_partition() -> int:
    return secrets.randbelow(PARTITIONS)


def route(command: Command, new_partition: Callable[[], int] = random_partition) -> Route:
    """The route of `command`; `new_partition` picks the partition of a new customer or lead."""
    if type(command) in NEW_PARTIES:
        return _new_party(command, NEW_PARTIES[type(command)], new_partition)
    if isinstance(command, WITH_CUSTOMER):
        return _with_parent(command, partition_of(command.customer_id))
    if isinstance(command, ConvertLead):
        return Route(partition_of(command.lead_id), command)
    if isinstance(command, RecordResponse):
        respondent = command.lead_id or command.customer_id  # the stream `record_response` writes to
        return Route(None if respondent is None else partition_of(respondent), command)
    if isinstance(command, Change):
        aggregate = command.aggregate.__name__
        return Route(None if is_reference(aggregate) else partition_of(command.aggregate_id), command)
    if isinstance(command, REFERENCE_CREATIONS):
        return Route(None, command)
    raise Unroutable(f"no shard route for {type(command).__name__}: add it to services/sharding/routing.py")


def _new_party(command: Any, kind: str, new_partition: Callable[[], int]) -> Route:
    external = command.kept_external_id()
    if external or command.id is not None:
        return Route(partition_of(record_id(kind, external, command.id)), command)
    partition = new_partition()
    return Route(partition, dataclasses.replace(command, id=in_partition(partition)))


def _with_parent(command: Any, partition: int) -> Route:
    """A deal or ticket: its customer's partition, and an id there unless it has one or an external id."""
    if command.id is not None or command.kept_external_id():
        return Route(partition, command)
    return Route(partition, dataclasses.replace(command, id=in_partition(partition)))
