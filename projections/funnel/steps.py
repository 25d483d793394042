"""How events move items through pipelines: deals (any pipeline), leads (marketing), tickets (service).

One pure mapping from an event to funnel steps, shared by the read model (`handlers`) and the replay
(`fold`) so that both agree on what a lead's contact or a ticket's rating means for its funnel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple
from uuid import UUID

from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.pipeline import LOST, WON
from domain.service_levels import SATISFIED_SCORE
from domain.ticket import Ticket
from projections.tables import cents


class ItemAttributes(NamedTuple):
    """What funnels are filtered by, besides owner and campaign: where an item comes from."""

    region: str | None
    industry: str | None
    channel: str | None


NO_ATTRIBUTES = ItemAttributes(None, None, None)  # an item of a customer the log has not registered


@dataclass(frozen=True)
class Profile:
    """Who a customer is: items of the customer take region, industry and channel from here."""

    customer_id: UUID
    region: str
    industry: str
    channel: str

    @property
    def attributes(self) -> ItemAttributes:
        return ItemAttributes(self.region, self.industry, self.channel)


@dataclass(frozen=True)
class Enter:
    item_id: UUID
    pipeline: str
    stage: str
    owner: str
    amount_cents: int = 0
    customer_id: UUID | None = None  # region/industry/channel come from the customer's Profile…
    campaign_id: UUID | None = None
    profile: ItemAttributes | None = None  # …unless the item carries its own (a lead does)
    currency: str = ""  # of its amounts (a deal's; "" for leads and tickets, which have none)


@dataclass(frozen=True)
class Move:
    item_id: UUID
    stage: str
    only_from: tuple[str, ...] = ()  # when set, move only out of these stages (a second contact is no step)


@dataclass(frozen=True)
class Revise:
    item_id: UUID
    owner: str | None = None
    amount_cents: int | None = None


Step = Profile | Enter | Move | Revise


def funnel_steps(event: Any) -> list[Step]:
    """The funnel steps an event makes; [] for events that move no funnel."""
    mapper = _MAPPERS.get(type(event))
    return mapper(event) if mapper else []


def _deal_opened(e: Deal.Opened) -> list[Step]:
    return [Enter(e.originator_id, e.pipeline, e.stage, e.owner, cents(e.amount), e.customer_id, e.campaign_id,
                  currency=e.currency)]


def _lead_captured(e: Lead.Captured) -> list[Step]:
    return [Enter(e.originator_id, "marketing", "captured", "", campaign_id=e.campaign_id,
                  profile=ItemAttributes(e.region, e.industry, e.channel))]


def _ticket_opened(e: Ticket.Opened) -> list[Step]:
    return [Enter(e.originator_id, "service", "feedback", "", customer_id=e.customer_id)]


def _ticket_status(e: Ticket.StatusChanged) -> list[Step]:
    return [Move(e.originator_id, "in_progress", only_from=("feedback",))] if e.to_status == "in_progress" else []


_MAPPERS: dict[type, Any] = {
    Customer.Registered: lambda e: [Profile(e.originator_id, e.region, e.industry, e.channel)],
    Deal.Opened: _deal_opened,
    Deal.StageChanged: lambda e: [Move(e.originator_id, e.to_stage)],
    Deal.Won: lambda e: [Move(e.originator_id, WON)],
    Deal.Lost: lambda e: [Move(e.originator_id, LOST)],
    Deal.Reopened: lambda e: [Move(e.originator_id, e.stage)],
    Deal.AmountChanged: lambda e: [Revise(e.originator_id, amount_cents=cents(e.new_amount))],
    Deal.OwnerChanged: lambda e: [Revise(e.originator_id, owner=e.new_owner)],
    Lead.Captured: _lead_captured,
    Lead.Assigned: lambda e: [Move(e.originator_id, "assigned", only_from=("captured",)),
                              Revise(e.originator_id, owner=e.owner)],
    Lead.Contacted: lambda e: [Move(e.originator_id, "contacted", only_from=("captured", "assigned"))],
    Lead.Qualified: lambda e: [Move(e.originator_id, "qualified")],
    Lead.Disqualified: lambda e: [Move(e.originator_id, LOST)],
    Lead.Converted: lambda e: [Move(e.originator_id, WON)],
    Ticket.Opened: _ticket_opened,
    Ticket.Assigned: lambda e: [Revise(e.originator_id, owner=e.assignee)],
    Ticket.StatusChanged: _ticket_status,
    Ticket.Resolved: lambda e: [Move(e.originator_id, "resolved")],
    Ticket.SatisfactionRated: lambda e: [Move(e.originator_id, WON if e.score >= SATISFIED_SCORE else LOST)],
    Ticket.Reopened: lambda e: [Move(e.originator_id, "feedback")],
}
FUNNEL_EVENTS: tuple[type, ...] = tuple(_MAPPERS)
