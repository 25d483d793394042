"""The rows of the inspection read model (pipeline inspection and win/loss), one named type per table, fields
in the table's column order.

What a deal was at any instant is kept as versions `[valid_from, valid_to)` in business time, as the forecast
keeps them; what changed between two instants as one row per change (`ChangeRow`), so that a window (A, B]
reads only its own changes; activity as one row per event on a deal and per touch or ticket event on a
customer, so that "no activity for N days as of B" is a MAX over rows at or before B. Products and teams are
kept as the values they took and when (the one in force at T is the last at or before T). Instants are µs
since the epoch, money cents; personal text (titles, reasons, competitors, names) is stored sealed
(`domain.personal_data.mark`) and opened by the queries.
"""

from __future__ import annotations

from typing import NamedTuple

CLOSE, AMOUNT, STAGE = "close", "amount", "stage"  # `ChangeRow.kind`
DEAL, TOUCH, TICKET = "deal", "touch", "ticket"  # `ActivityRow.kind`


class DealRow(NamedTuple):
    """What does not change about a deal, and its open version (`seq`)."""

    deal_id: str
    customer_id: str
    pipeline: str
    title: str  # sealed
    seq: int


class VersionRow(NamedTuple):
    """A deal as it stood during `[valid_from, valid_to)`."""

    deal_id: str
    seq: int
    valid_from: int
    valid_to: int | None
    stage: str
    status: str  # open, won or lost
    owner: str
    amount_cents: int
    currency: str
    expected_close: str | None  # ISO date
    closed_at: int | None  # while won or lost: when
    closed_from: str  # the stage it was won or lost from ("" while open)
    reason: str  # sealed loss reason ("" otherwise)
    competitor: str  # sealed: who won instead ("" unknown or not lost)


class ChangeRow(NamedTuple):
    """One change to a deal's close date, amount or stage (wins, losses and reopenings are stage changes)."""

    deal_id: str
    seq: int
    at: int
    kind: str  # close, amount or stage
    old: str  # ISO date ("" none), cents, or stage/status
    new: str
    actor: str
    reason: str  # sealed


class ActivityRow(NamedTuple):
    """An event that counts as activity: any event of a deal (record = the deal), a touch on a customer or any
    event of a customer's ticket (record = the customer or the ticket)."""

    record_id: str
    seq: int
    customer_id: str
    kind: str  # deal, touch or ticket
    at: int


class TicketRow(NamedTuple):
    ticket_id: str
    customer_id: str


class CustomerRow(NamedTuple):
    customer_id: str
    name: str  # sealed
    company: str  # sealed
    registered_at: int


class ProductRow(NamedTuple):
    """A deal's or a customer's `product` property from `at` ("": removed)."""

    record_id: str
    seq: int
    at: int
    product: str


class TeamRow(NamedTuple):
    """An owner's team from `at` (`domain.targets.OwnerTeam`; "": none)."""

    membership_id: str
    seq: int
    at: int
    owner: str
    team: str
