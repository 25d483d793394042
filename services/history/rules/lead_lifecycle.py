"""`crm import`'s checks of a lead's events: its steps in the order `domain.lead.require_status` allows (owner
before contact, contact before qualifying), and the campaign, customer and deal it names exist."""

from __future__ import annotations

import sys

from domain import campaign as campaign_rules
from domain import lead as lead_rules
from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from services.history.rules.campaign_lifecycle import refer_variant
from services.history.rules.lifecycle import Engine, Rule
from services.history.rules.tracked import Tracked


def _captured(rules: Engine, lead: Tracked, campaign_id: int | None, variant: str) -> None:
    rules.refer("campaign_id", Campaign, campaign_id)
    refer_variant(rules, campaign_id, variant)
    lead.status = lead_rules.NEW


def _assigned(rules: Engine, lead: Tracked, owner: str) -> None:
    lead_rules.require_status(lead.status, "assign")
    lead.owner = sys.intern(owner)  # a few owners, many leads: one string each


def _contacted(rules: Engine, lead: Tracked) -> None:
    lead_rules.require_status(lead.status, "contact")
    lead_rules.require_owner(lead.owner)
    lead.contacted = True


def _qualified(rules: Engine, lead: Tracked) -> None:
    lead_rules.require_status(lead.status, "qualify")
    lead_rules.require_contacted(lead.contacted)
    lead.status = lead_rules.QUALIFIED


def _disqualified(rules: Engine, lead: Tracked) -> None:
    lead_rules.require_status(lead.status, "disqualify")
    lead.status = lead_rules.DISQUALIFIED


def _converted(rules: Engine, lead: Tracked, customer_id: int, deal_id: int) -> None:
    lead_rules.require_status(lead.status, "convert")
    rules.refer("customer_id", Customer, customer_id)
    rules.refer("deal_id", Deal, deal_id)
    lead.status = lead_rules.CONVERTED


def _responded(rules: Engine, lead: Tracked, campaign_id: int, variant: str) -> None:
    rules.refer("campaign_id", Campaign, campaign_id,
                lambda campaign: campaign_rules.require_launched_before(campaign.status))
    refer_variant(rules, campaign_id, variant)


RULES: dict[type, Rule] = {
    Lead.Captured: _captured,
    Lead.Assigned: _assigned,
    Lead.Contacted: _contacted,
    Lead.Qualified: _qualified,
    Lead.Disqualified: _disqualified,
    Lead.Converted: _converted,
    Lead.RespondedToCampaign: _responded,
}
