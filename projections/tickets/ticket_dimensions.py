"""What the ticket report is grouped and filtered by: the ticket's owner (its assignee) and priority as of
the instant, its customer's region, industry and channel (fixed at registration), or a property of its
customer as of the instant — from the read model's own tables (`tickets_customers`, `tickets_properties`).

A group is the plain report (`TicketQueries.report`'s very functions) over the tickets of one value, so its
figures follow the same rules; groups partition the tickets and their ratings, so ticket counts add up to
the unfiltered report (customer counts — satisfied customers, loyal — add up only for customer axes: a
customer whose tickets have two owners counts in both).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.properties import require_name
from domain.vocabulary import UNKNOWN

TICKET_AXES = ("owner", "priority")
"""Axes of the ticket itself, as of the instant (owner: its assignee; None when unassigned)."""
CUSTOMER_AXES = ("region", "industry", "channel")
"""Axes of its customer, fixed at registration (`unknown` when the read model never saw the customer)."""


def customer_values_sql(by: str) -> tuple[str, list[Any]]:
    """A query of customer id → the customer's value of `by`, and its parameters but the instant's (a property's
    query ends with two instants to bind, a dimension's with none); DomainError for a bad property name."""
    if by in CUSTOMER_AXES:
        return f"SELECT customer_id, {by} FROM tickets_customers", []
    return ("SELECT customer_id, value FROM tickets_properties WHERE name = ? AND valid_from <= ? "
            "AND (valid_to IS NULL OR valid_to > ?)", [require_name(by)])


def missing(by: str) -> str | None:
    """The value of a ticket the axis says nothing about: `unknown` for a customer's dimension, None else."""
    return UNKNOWN if by in CUSTOMER_AXES else None


def sort_key(value: str | None) -> tuple[bool, str]:
    """Values in order, the missing one (None) last."""
    return value is None, value or ""


@dataclass(frozen=True)
class TicketGroups:
    """One ticket report per value of `by` among the tickets the property filters keep."""

    as_of: datetime
    by: str
    properties: list[tuple[str, str]]
    groups: list[tuple[str | None, Any]]  # (value, TicketReport)

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "by": self.by,
                "properties": {name: value for name, value in self.properties},
                "groups": [{"key": {self.by: value}, **report.to_dict()} for value, report in self.groups]}
