"""The rows of the tickets read model, one named type per table, fields in the table's column order.

Each table is declared with its type (`Table.row_type`, which refuses one whose fields are not the
columns in order), so `Rows` fetches, holds and writes these very tuples, with no conversion to or from
dicts; handlers change a row by `put`ting its `_replace`. Instants stay µs since the epoch, as stored
(`projections.tables`).
"""

from __future__ import annotations

from typing import NamedTuple


class TicketRow(NamedTuple):
    """A ticket now, with its current status/assignee version and its standing resolution, if any."""

    ticket_id: str
    customer_id: str
    priority: str
    subject: str  # sealed (`domain.personal_data.mark`): it is about the customer
    opened_at: int
    first_response_at: int | None
    first_resolved_at: int | None
    status: str
    assignee: str | None
    version_seq: int  # the event that began the current version
    version_from: int
    resolution_seq: int | None  # the event that began the standing resolution
    resolved_at: int | None


class VersionRow(NamedTuple):
    """The ticket's status and assignee during `[valid_from, valid_to)`; valid_to None while it lasts."""

    ticket_id: str
    seq: int
    status: str
    assignee: str | None
    valid_from: int
    valid_to: int | None


class ResolutionRow(NamedTuple):
    """A resolution standing during `[resolved_at, reopened_at)`; reopened_at None while it stands."""

    ticket_id: str
    seq: int
    resolved_at: int
    reopened_at: int | None


class RatingRow(NamedTuple):
    """A satisfaction rating, with the ticket's customer and assignee when it was given."""

    ticket_id: str
    seq: int
    customer_id: str
    assignee: str | None
    score: int
    rated_at: int


class DealRow(NamedTuple):
    """A deal's customer, for crediting its win."""

    deal_id: str
    customer_id: str


class WinRow(NamedTuple):
    """A deal won (again, after a reopening, with a later seq)."""

    deal_id: str
    seq: int
    customer_id: str
    won_at: int


class CustomerRow(NamedTuple):
    """A ticket's customer's dimensions, fixed at registration (`Customer.Registered`)."""

    customer_id: str
    region: str
    industry: str
    channel: str


class PropertyRow(NamedTuple):
    """A customer's property during `[valid_from, valid_to)`; valid_to None while it lasts (a removal has none)."""

    customer_id: str
    name: str
    seq: int
    value: str
    valid_from: int
    valid_to: int | None


class CurrentPropertyRow(NamedTuple):
    """A customer's property now ("" once removed), so that a change finds the version to close without a scan."""

    customer_id: str
    name: str
    seq: int
    value: str
    valid_from: int
