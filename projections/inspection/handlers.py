"""The write side of the inspection read model: deal, customer, ticket and team events → versions of deals,
their changes, activity, products and teams.

Each handler touches only its own record's rows (a deal's and a ticket's customer shares their home
partition; teams are reference data, the same rows whichever partition brings them), so the partitioned
consumers may apply partitions in any interleaving: what joins a deal to its customer, its owner's team and
its product happens in `queries`, as of T.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.base import CrmAggregate
from domain.customer import Customer
from domain.deal import OPEN, Deal
from domain.personal_data import mark
from domain.pipeline import LOST, WON
from domain.targets import OwnerTeam
from domain.ticket import Ticket
from projections.inspection.rows import (AMOUNT, CLOSE, DEAL, STAGE, TICKET, TOUCH, ActivityRow, ChangeRow,
                                         CustomerRow, DealRow, ProductRow, TeamRow, TicketRow, VersionRow)
from projections.read_model import ReadModel, Rows
from projections.tables import Table, cents, micros

DEALS = Table("inspection_deals", (("deal_id", "TEXT"), ("customer_id", "TEXT"), ("pipeline", "TEXT"),
                                   ("title", "TEXT"), ("seq", "INTEGER")), ("deal_id",), row_type=DealRow)
VERSIONS = Table(
    "inspection_deal_versions",
    (("deal_id", "TEXT"), ("seq", "INTEGER"), ("valid_from", "BIGINT"), ("valid_to", "BIGINT"), ("stage", "TEXT"),
     ("status", "TEXT"), ("owner", "TEXT"), ("amount_cents", "BIGINT"), ("currency", "TEXT"),
     ("expected_close", "TEXT"), ("closed_at", "BIGINT"), ("closed_from", "TEXT"), ("reason", "TEXT"),
     ("competitor", "TEXT")),
    ("deal_id", "seq"), indexes=(("valid_from",),), row_type=VersionRow)
CHANGES = Table(
    "inspection_changes",
    (("deal_id", "TEXT"), ("seq", "INTEGER"), ("at", "BIGINT"), ("kind", "TEXT"), ("old", "TEXT"), ("new", "TEXT"),
     ("actor", "TEXT"), ("reason", "TEXT")),
    ("deal_id", "seq"), indexes=(("kind", "at"),), row_type=ChangeRow)
ACTIVITY = Table(
    "inspection_activity",
    (("record_id", "TEXT"), ("seq", "INTEGER"), ("customer_id", "TEXT"), ("kind", "TEXT"), ("at", "BIGINT")),
    ("record_id", "seq"), indexes=(("kind", "at"),), row_type=ActivityRow)
TICKETS = Table("inspection_tickets", (("ticket_id", "TEXT"), ("customer_id", "TEXT")), ("ticket_id",),
                row_type=TicketRow)
CUSTOMERS = Table("inspection_customers", (("customer_id", "TEXT"), ("name", "TEXT"), ("company", "TEXT"),
                                           ("registered_at", "BIGINT")), ("customer_id",), row_type=CustomerRow)
PRODUCTS = Table("inspection_products", (("record_id", "TEXT"), ("seq", "INTEGER"), ("at", "BIGINT"),
                                         ("product", "TEXT")), ("record_id", "seq"), row_type=ProductRow)
TEAMS = Table("inspection_teams", (("membership_id", "TEXT"), ("seq", "INTEGER"), ("at", "BIGINT"),
                                   ("owner", "TEXT"), ("team", "TEXT")), ("membership_id", "seq"), row_type=TeamRow)
PRODUCT = "product"  # the property that names a deal's product (the deal's own, else its customer's)


def _events_of(aggregate: type) -> list[type]:
    return [cls for cls in vars(aggregate).values()
            if isinstance(cls, type) and issubclass(cls, CrmAggregate.Event)]


class InspectionReadModel(ReadModel):
    """Deals' versions and changes, activity, products and teams: slippage, changes, inactivity and win/loss
    as of any instant."""

    name = "inspection"
    tables = (DEALS, VERSIONS, CHANGES, ACTIVITY, TICKETS, CUSTOMERS, PRODUCTS, TEAMS)

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        found: dict[type, Callable[[Any, Rows], None]] = {cls: _deal_activity for cls in _events_of(Deal)}
        found.update({cls: _ticket_activity for cls in _events_of(Ticket)})
        found.update({cls: _with_activity(change) for cls, change in _DEAL_CHANGES.items()})
        return {**found, Deal.Opened: _opened, Deal.PropertiesChanged: _with_activity(_product),
                Customer.Registered: _registered, Customer.TouchLogged: _touched,
                Customer.PropertiesChanged: _product, OwnerTeam.Assigned: _team, OwnerTeam.Moved: _team}

    def prefetch(self, events: list[Any], rows: Rows) -> None:
        """A batch's deals, then their open versions: two reads, not one per event."""
        deals = {str(e.originator_id) for e in events if isinstance(e, Deal.Event) and not isinstance(e, Deal.Opened)}
        rows.prefetch(DEALS, [(deal,) for deal in deals])
        heads = [rows.get(DEALS, deal) for deal in deals]
        rows.prefetch(VERSIONS, [(head.deal_id, head.seq) for head in heads if head is not None])


# --- deals ---------------------------------------------------------------------------------------------


def _opened(event: Deal.Opened, rows: Rows) -> None:
    deal_id, at = str(event.originator_id), micros(event.occurred_at)
    rows.put(DEALS, DealRow(deal_id, str(event.customer_id), event.pipeline, mark(event.title),
                            event.originator_version))
    close = None if event.expected_close is None else event.expected_close.isoformat()
    rows.put(VERSIONS, VersionRow(deal_id, event.originator_version, at, None, event.stage, OPEN, event.owner,
                                  cents(event.amount), event.currency, close, None, "", "", ""))
    _deal_activity(event, rows)


def _deal_activity(event: Any, rows: Rows) -> None:
    deal = rows.get(DEALS, str(event.originator_id))
    if deal is not None:
        rows.put(ACTIVITY, ActivityRow(deal.deal_id, event.originator_version, deal.customer_id, DEAL,
                                       micros(event.occurred_at)))


def _with_activity(handle: Callable[[Any, Rows], None]) -> Callable[[Any, Rows], None]:
    def both(event: Any, rows: Rows) -> None:
        handle(event, rows)
        _deal_activity(event, rows)
    return both


def _version(change: Callable[[VersionRow, Any], VersionRow]) -> Callable[[Any, Rows], None]:
    """A handler that ends the deal's open version at the event and begins `change(previous, event)`."""
    def handle(event: Any, rows: Rows) -> None:
        deal: DealRow | None = rows.get(DEALS, str(event.originator_id))
        previous = None if deal is None else rows.get(VERSIONS, deal.deal_id, deal.seq)
        if deal is None or previous is None:
            return  # a deal never opened (cannot happen in a log the commands wrote)
        at = micros(event.occurred_at)
        rows.put(VERSIONS, previous._replace(valid_to=at))
        rows.put(VERSIONS, change(previous, event)._replace(seq=event.originator_version, valid_from=at,
                                                            valid_to=None))
        rows.put(DEALS, deal._replace(seq=event.originator_version))
        _change(event, previous, rows)
    return handle


def _change(event: Any, previous: VersionRow, rows: Rows) -> None:
    """The change row of a close date, amount or stage event (others change only the version)."""
    found = _CHANGE_OF.get(type(event))
    if found is not None:
        kind, old, new, reason = found(event, previous)
        rows.put(CHANGES, ChangeRow(str(event.originator_id), event.originator_version, micros(event.occurred_at),
                                    kind, old, new, event.actor, reason))


def _closed(status: str) -> Callable[[VersionRow, Any], VersionRow]:
    def close(deal: VersionRow, event: Any) -> VersionRow:
        lost = status == LOST
        return deal._replace(status=status, closed_at=micros(event.occurred_at), closed_from=event.from_stage,
                             reason=mark(event.reason) if lost else "",
                             competitor=mark(event.competitor) if lost else "")
    return close


_DEAL_CHANGES: dict[type, Callable[[Any, Rows], None]] = {
    Deal.StageChanged: _version(lambda d, e: d._replace(stage=e.to_stage)),
    Deal.AmountChanged: _version(lambda d, e: d._replace(amount_cents=cents(e.new_amount))),
    Deal.OwnerChanged: _version(lambda d, e: d._replace(owner=e.new_owner)),
    Deal.Won: _version(_closed(WON)),
    Deal.Lost: _version(_closed(LOST)),
    Deal.Reopened: _version(lambda d, e: d._replace(status=OPEN, stage=e.stage, closed_at=None, closed_from="",
                                                    reason="", competitor="")),
    Deal.ExpectedCloseChanged: _version(lambda d, e: d._replace(expected_close=e.new_close.isoformat())),
}
_CHANGE_OF: dict[type, Callable[[Any, VersionRow], tuple[str, str, str, str]]] = {
    Deal.StageChanged: lambda e, d: (STAGE, e.from_stage, e.to_stage, mark(e.reason)),
    Deal.Won: lambda e, d: (STAGE, e.from_stage, WON, mark(e.note)),
    Deal.Lost: lambda e, d: (STAGE, e.from_stage, LOST, mark(e.reason)),
    Deal.Reopened: lambda e, d: (STAGE, d.status, e.stage, mark(e.reason)),
    Deal.AmountChanged: lambda e, d: (AMOUNT, str(cents(e.old_amount)), str(cents(e.new_amount)), ""),
    Deal.ExpectedCloseChanged: lambda e, d: (CLOSE, "" if e.old_close is None else e.old_close.isoformat(),
                                             e.new_close.isoformat(), mark(e.reason)),
}


def _product(event: Any, rows: Rows) -> None:
    if PRODUCT in event.changes:
        rows.put(PRODUCTS, ProductRow(str(event.originator_id), event.originator_version, micros(event.occurred_at),
                                      event.changes[PRODUCT]))


# --- customers, tickets, teams ---------------------------------------------------------------------------


def _registered(event: Customer.Registered, rows: Rows) -> None:
    rows.put(CUSTOMERS, CustomerRow(str(event.originator_id), mark(event.name or ""), mark(event.company or ""),
                                    micros(event.occurred_at)))


def _touched(event: Customer.TouchLogged, rows: Rows) -> None:
    customer = str(event.originator_id)
    rows.put(ACTIVITY, ActivityRow(customer, event.originator_version, customer, TOUCH, micros(event.occurred_at)))


def _ticket_activity(event: Any, rows: Rows) -> None:
    ticket_id = str(event.originator_id)
    if isinstance(event, Ticket.Opened):
        rows.put(TICKETS, TicketRow(ticket_id, str(event.customer_id)))
    ticket = rows.get(TICKETS, ticket_id)
    if ticket is not None:
        rows.put(ACTIVITY, ActivityRow(ticket_id, event.originator_version, ticket.customer_id, TICKET,
                                       micros(event.occurred_at)))


def _team(event: OwnerTeam.Assigned | OwnerTeam.Moved, rows: Rows) -> None:
    team = event.team if isinstance(event, OwnerTeam.Assigned) else event.new_team
    owner = getattr(event, "owner", None)
    if owner is None:  # a move names no owner: the membership's first row does
        first = rows.select(f"SELECT owner FROM {TEAMS.name} WHERE membership_id = ? ORDER BY seq LIMIT 1",
                            [str(event.originator_id)])
        owner = first[0][0] if first else ""
    rows.put(TEAMS, TeamRow(str(event.originator_id), event.originator_version, micros(event.occurred_at), owner,
                            team))
