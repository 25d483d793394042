"""The campaigns read model: cost, responses, leads, deals, revenue, attribution and CLV, as of any instant.

`handlers.py` is its write side (tables and the events that become their rows), `queries.py` its query
side (the facts as of an instant and the report derived from them), `rows.py` the typed rows both use;
the rules behind the figures are `domain.marketing`'s. The names callers use are re-exported here.
"""

from __future__ import annotations

from projections.campaigns.handlers import (
    COSTS,
    CUSTOMERS,
    DEAL_EVENTS,
    DEALS,
    LEADS,
    PLANS,
    RESPONSES,
    STATUSES,
    CampaignsReadModel,
)
from projections.campaigns.queries import (
    UNKNOWN_CHANNEL,
    CampaignGroups,
    AttributionRow,
    CampaignQueries,
    CampaignRow,
    CampaignsReport,
    CampaignValue,
    ChannelRow,
    ChannelValue,
    Totals,
)
from projections.campaigns.rows import AMOUNT, REOPENED

__all__ = [
    "AMOUNT", "COSTS", "CUSTOMERS", "DEALS", "DEAL_EVENTS", "LEADS", "PLANS", "REOPENED", "RESPONSES", "STATUSES",
    "UNKNOWN_CHANNEL", "AttributionRow", "CampaignQueries", "CampaignRow", "CampaignValue", "CampaignsReadModel",
    "CampaignGroups", "CampaignsReport", "ChannelRow", "ChannelValue", "Totals",
]
