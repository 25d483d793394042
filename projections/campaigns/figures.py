"""The figures of the campaigns report and how a campaign's or a channel's totals are summed and frozen.

Both ways of answering as of an instant build these: `facts_report` from the facts that had happened by
then (every figure derived in Python: the reference, and the grouped reports), `summed` from the read
model's pre-summed tallies (the plain report, whose cost does not grow with the history).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.exchange_rates import Conversion, add_sums
from domain.funnel_rules import win_rate, win_rate_note
from domain.marketing import customer_acquisition_cost, roi
from domain.vocabulary import RESPONSE_KINDS
from projections.campaigns.rows import Plan, id_text
from projections.tables import from_micros

UNKNOWN_CHANNEL = "(unknown)"


# --- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """What a campaign (or all campaigns of a channel) had achieved by an instant. Money in cents."""

    cost_cents: int
    responses: dict[str, int]
    leads: int
    qualified: int  # qualified by the instant (converted or disqualified since included)
    converted: int
    disqualified: int  # disqualified before being qualified; leads − qualified − disqualified are still new
    qualified_disqualified: int  # disqualified after being qualified; qualified − converted − these are open
    deals: int
    won: int
    lost: int  # deals lost (and not reopened) by the instant; deals − won − lost are still open
    won_revenue_cents: int
    new_customers: int
    roi: float | None  # (won revenue − cost) / cost: domain.marketing.roi
    cac_cents: int | None  # cost / new customers: domain.marketing.customer_acquisition_cost
    unconverted: dict[str, int] = field(default_factory=dict)  # cost and won revenue without a rate at T

    @property
    def response_count(self) -> int:
        return sum(self.responses.values())


@dataclass(frozen=True)
class CampaignRow:
    campaign_id: UUID
    name: str
    channel: str
    status: str
    planned_at: datetime
    budget_cents: int
    currency: str
    totals: Totals


@dataclass(frozen=True)
class ChannelRow:
    channel: str
    campaigns: int
    totals: Totals
    # Among decided leads only, open ones apart (see Totals): qualified / (qualified + disqualified), and
    # converted / (converted + disqualified after qualifying); None with no decided lead (notes say why).
    lead_to_qualified: float | None
    lead_to_qualified_note: str | None
    qualified_to_deal: float | None
    qualified_to_deal_note: str | None
    # A win rate: won / (won + lost), open deals apart (domain.funnel_rules.win_rate); its note says why None.
    deal_to_won: float | None
    deal_to_won_note: str | None


@dataclass(frozen=True)
class AttributionRow:
    """Won deals and revenue credited to a campaign (None: no campaign touch before the win)."""

    campaign_id: UUID | None
    name: str | None
    first_touch_deals: int
    first_touch_revenue_cents: int
    last_touch_deals: int
    last_touch_revenue_cents: int


@dataclass(frozen=True)
class ChannelValue:
    """Lifetime value of the customers acquired through a channel (those with a won deal)."""

    channel: str
    customers: int
    total_cents: int
    average_cents: int | None


@dataclass(frozen=True)
class CampaignValue:
    """Lifetime value of the customers whose first touch was a campaign (None: no campaign touch)."""

    campaign_id: UUID | None
    name: str | None
    customers: int
    total_cents: int
    average_cents: int | None


@dataclass(frozen=True)
class CampaignsReport:
    as_of: datetime
    channel: str | None
    campaigns: list[CampaignRow]
    channels: list[ChannelRow]
    attribution: list[AttributionRow]
    clv_by_channel: list[ChannelValue]
    clv_by_first_touch: list[CampaignValue]
    currency: str = "CNY"  # of every amount but budgets (each in its campaign's `currency`)
    rates: dict[str, Any] = field(default_factory=dict)  # the rates used: currency → rate and its date
    unconverted: dict[str, int] = field(default_factory=dict)  # every cost and won revenue without a rate at T

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value

# --- totals of a campaign, summed over a channel ----------------------------------------------


@dataclass
class Tally:
    cost_cents: int = 0
    responses: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESPONSE_KINDS, 0))
    leads: int = 0
    qualified: int = 0
    converted: int = 0
    disqualified: int = 0
    qualified_disqualified: int = 0
    deals: int = 0
    won: int = 0
    lost: int = 0
    won_revenue_cents: int = 0
    new_customers: int = 0
    unconverted: dict[str, int] = field(default_factory=dict)

    def add(self, other: Tally) -> None:
        for name, value in vars(other).items():
            if name == "responses":
                for kind, count in value.items():
                    self.responses[kind] += count
            elif name == "unconverted":
                add_sums(self.unconverted, value)
            else:
                setattr(self, name, getattr(self, name) + value)

    def freeze(self) -> Totals:
        complete = not self.unconverted  # with part of the money unconverted, no ROI or CAC would be right
        return Totals(**vars(self) | {"responses": dict(self.responses), "unconverted": dict(self.unconverted)},
                      roi=roi(self.won_revenue_cents, self.cost_cents) if complete else None,
                      cac_cents=customer_acquisition_cost(self.cost_cents, self.new_customers) if complete else None)


def channel_rows(plans: dict[str, Plan], tallies: dict[str, Tally]) -> list[ChannelRow]:
    """Each channel's totals (its planned campaigns' summed) and conversion rates, by channel name."""
    by_channel: dict[str, Tally] = defaultdict(Tally)
    campaigns: dict[str, int] = defaultdict(int)
    for cid, plan in plans.items():
        by_channel[plan.channel].add(tallies[cid])
        campaigns[plan.channel] += 1
    return [ChannelRow(channel, campaigns[channel], tally.freeze(),
                       win_rate(tally.qualified, tally.disqualified), win_rate_note(tally.qualified, tally.disqualified),
                       win_rate(tally.converted, tally.qualified_disqualified),
                       win_rate_note(tally.converted, tally.qualified_disqualified),
                       win_rate(tally.won, tally.lost), win_rate_note(tally.won, tally.lost))
            for channel, tally in sorted(by_channel.items())]


def campaign_row(campaign_id: str, plan: Plan, tally: Tally) -> CampaignRow:
    return CampaignRow(UUID(campaign_id), plan.name, plan.channel, plan.status, from_micros(plan.planned_at),
                       plan.budget_cents, plan.currency, tally.freeze())


def as_uuid(value: str | None) -> UUID | None:
    return UUID(value) if value else None


Unconverted = Callable[[Callable[[str | None], bool]], dict[str, int]]
"""The money without a rate at T of the campaigns a report wants (a campaign id, or None: no campaign)."""


def assemble(as_of: datetime, channel: str | None, plans: dict[str, Plan], tallies: dict[str, Tally],
             attribution: list[AttributionRow], clv_by_channel: list[ChannelValue],
             clv_by_first_touch: list[CampaignValue], unconverted: Unconverted, money: Conversion) -> CampaignsReport:
    """The report from its parts (every planned campaign's and the None rows included); with `channel`, only
    that channel's campaigns and customers. Campaigns in order of planning, then name, then id."""
    order = sorted(plans, key=lambda cid: (plans[cid].planned_at, plans[cid].name, cid))

    def wanted(campaign_id: str | None) -> bool:
        return channel is None or (campaign_id is not None and plans[campaign_id].channel == channel)

    campaigns = [campaign_row(cid, plans[cid], tallies[cid]) for cid in order if wanted(cid)]
    rank = {cid: i for i, cid in enumerate(order)}

    def ordered(rows: list[Any]) -> list[Any]:
        return sorted((r for r in rows if wanted(id_text(r.campaign_id))),
                      key=lambda r: rank.get(id_text(r.campaign_id) or "", len(rank)))

    return CampaignsReport(
        as_of=as_of, channel=channel, campaigns=campaigns,
        channels=[row for row in channel_rows(plans, tallies) if channel in (None, row.channel)],
        attribution=ordered(attribution),
        clv_by_channel=[row for row in clv_by_channel if channel in (None, row.channel)],
        clv_by_first_touch=ordered(clv_by_first_touch),
        currency=money.reporting, rates=money.to_dict()["rates"],  # type: ignore[arg-type]
        unconverted=unconverted(wanted),
    )
