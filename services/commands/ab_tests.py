"""Commands of a campaign's A/B test: define its variants, record exposures, stop a variant, declare a winner.

The variants travel as plain objects (key, name, copy, channel, landing_page, offer, weight): their rules —
unique keys, weights > 0, a redefinition keeping every key — are the domain's (`domain.campaign_variants`),
worded once there for every way in (HTTP, CLI, `crm import`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, StrictInt

from services.commands.campaigns import CampaignChange
from services.commands.field_types import Text

VariantKey = Annotated[str, Field(max_length=200, description='The variant\'s short key, "A", "B", "对照组".')]
VariantSpec = Annotated[dict[str, Text | StrictInt],
                        Field(description='{"key": "B", "name": "…", "copy": "…", "channel": "…", "landing_page": '
                                          '"…", "offer": "…", "weight": 1}; key and weight required.')]
# 20 variants: far more than any A/B/n test splits its audience into (each arm needs its own sample).
Variants = Annotated[list[VariantSpec], Field(min_length=1, max_length=20)]
Count = Annotated[StrictInt, Field(description="How many were sent or shown, more than zero.")]


@dataclass(frozen=True, slots=True)
class DefineVariants(CampaignChange):
    """The campaign's variants, control first; a redefinition keeps every key defined before."""

    variants: Variants
    reason: Text = ""


@dataclass(frozen=True, slots=True)
class RecordExposures(CampaignChange):
    variant: VariantKey
    count: Count
    note: Text = ""


@dataclass(frozen=True, slots=True)
class StopVariant(CampaignChange):
    variant: VariantKey
    reason: Text


@dataclass(frozen=True, slots=True)
class DeclareWinner(CampaignChange):
    variant: VariantKey
    reason: Text

