"""Commands on campaigns: plan, launch, record cost and responses, close."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

from domain.campaign import Campaign
from domain.vocabulary import RESPONSE_KINDS, UNKNOWN
from services.commands.command import Change, ImportableCreation, absent_means
from services.commands.field_types import Amount, Currency, Label, Name, Text


@dataclass(frozen=True, slots=True)
class PlanCampaign(ImportableCreation):
    name: Name
    channel: Label = absent_means(UNKNOWN)  # an acquisition channel of the vocabulary
    budget: Amount
    currency: Currency = field(default="CNY", kw_only=True)


@dataclass(frozen=True, slots=True)
class CampaignChange(Change):
    aggregate, address = Campaign, "campaign_id"
    campaign_id: UUID


@dataclass(frozen=True, slots=True)
class LaunchCampaign(CampaignChange):
    pass


@dataclass(frozen=True, slots=True)
class RecordCost(CampaignChange):
    amount: Amount
    note: Text = ""


@dataclass(frozen=True, slots=True)
class RecordResponse(CampaignChange):
    """An impression, click, registration… of a customer or a lead."""

    kind: Literal[RESPONSE_KINDS]  # type: ignore[valid-type]
    customer_id: UUID | None = None
    lead_id: UUID | None = None
    variant: Label = ""  # the key of the campaign's variant responded to ("" none)


@dataclass(frozen=True, slots=True)
class CloseCampaign(CampaignChange):
    pass
