"""Commands on deals: open, move between stages, change amount, owner or properties, win, lose, reopen."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from domain.deal import Deal
from services.commands.command import Change, ImportableCreation
from services.commands.field_types import Amount, Currency, Day, Label, Name, Properties, StageKey, Text


@dataclass(frozen=True, slots=True)
class OpenDeal(ImportableCreation):
    """`owner` defaults to the actor of the command; `stage` to the pipeline's first."""

    pipeline: StageKey = field(default="sales", kw_only=True)
    customer_id: UUID
    title: Name
    amount: Amount
    currency: Currency = field(default="CNY", kw_only=True)
    owner: Name | None = field(default=None, kw_only=True)
    stage: StageKey | None = field(default=None, kw_only=True)
    expected_close: Day | None = field(default=None, kw_only=True)
    lead_id: UUID | None = field(default=None, kw_only=True)
    campaign_id: UUID | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class DealChange(Change):
    aggregate, address = Deal, "deal_id"
    deal_id: UUID


@dataclass(frozen=True, slots=True)
class ChangeStage(DealChange):
    stage: StageKey
    reason: Text = ""


@dataclass(frozen=True, slots=True)
class ChangeAmount(DealChange):
    amount: Amount


@dataclass(frozen=True, slots=True)
class ChangeOwner(DealChange):
    owner: Name


@dataclass(frozen=True, slots=True)
class WinDeal(DealChange):
    note: Text = ""


@dataclass(frozen=True, slots=True)
class LoseDeal(DealChange):
    reason: Text = ""  # one of the loss reasons of the vocabulary; none: `unknown`, and the deal is lost all the same
    competitor: Label = ""  # who won instead, when known


@dataclass(frozen=True, slots=True)
class ReopenDeal(DealChange):
    """Reopen a won or lost deal in `stage`, else in the stage it closed from."""

    reason: Text
    stage: StageKey | None = None


@dataclass(frozen=True, slots=True)
class ChangeDealProperties(DealChange):
    """Set the deal's named properties (product, team, …); "" removes one (`domain.properties`)."""

    changes: Properties
