"""`crm import`'s checks of a customer's events: the campaign it came from exists, and nothing happens to a
forgotten customer (`domain.customer.require_not_forgotten`, which the commands ask too)."""

from __future__ import annotations

from typing import Any

from domain import campaign as campaign_rules
from domain import customer as customer_rules
from domain.campaign import Campaign
from domain.customer import Customer
from services.history.rules.campaign_lifecycle import refer_variant
from services.history.rules.lifecycle import Engine, Rule
from services.history.rules.tracked import Tracked


def _changed(rules: Engine, customer: Tracked, *_: Any) -> None:
    customer_rules.require_not_forgotten(customer.forgotten)


def _forgotten(rules: Engine, customer: Tracked) -> None:
    _changed(rules, customer)
    customer.forgotten = True


def _registered(rules: Engine, customer: Tracked, campaign_id: int | None) -> None:
    rules.refer("campaign_id", Campaign, campaign_id)


def _responded(rules: Engine, customer: Tracked, campaign_id: int, variant: str) -> None:
    _changed(rules, customer)
    rules.refer("campaign_id", Campaign, campaign_id,
                lambda campaign: campaign_rules.require_launched_before(campaign.status))
    refer_variant(rules, campaign_id, variant)


RULES: dict[type, Rule] = {
    Customer.Registered: _registered,
    Customer.ContactDetailsChanged: _changed,
    Customer.TouchLogged: _changed,
    Customer.TagAdded: _changed,
    Customer.TagRemoved: _changed,
    Customer.ConsentChanged: _changed,
    Customer.PropertiesChanged: _changed,
    Customer.RespondedToCampaign: _responded,
    Customer.Forgotten: _forgotten,
}
