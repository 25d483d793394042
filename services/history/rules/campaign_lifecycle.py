"""`crm import`'s checks of a campaign's events: planned → launched → closed as `domain.campaign.require_status`
allows, and each response names a customer or lead that exists."""

from __future__ import annotations

from collections.abc import Callable

from domain import campaign as campaign_rules
from domain.campaign import Campaign
from domain.customer import Customer
from domain.lead import Lead
from services.history.rules.lifecycle import Engine, Rule
from services.history.rules.tracked import Tracked


def _step(action: str, status: str | None) -> Callable[..., None]:
    def step(rules: Engine, campaign: Tracked) -> None:
        if action:
            campaign_rules.require_status(campaign.status, action)
        campaign.status = status or campaign.status
    return step


def _response(rules: Engine, campaign: Tracked, customer_id: int | None, lead_id: int | None) -> None:
    campaign_rules.require_status(campaign.status, "record_response")
    campaign_rules.require_respondent(customer_id, lead_id)  # type: ignore[arg-type]
    rules.refer("customer_id", Customer, customer_id)
    rules.refer("lead_id", Lead, lead_id)


RULES: dict[type, Rule] = {
    Campaign.Planned: _step("", campaign_rules.PLANNED),
    Campaign.Launched: _step("launch", campaign_rules.LAUNCHED),
    Campaign.ResponseRecorded: _response,
    Campaign.Closed: _step("close", campaign_rules.CLOSED),
}
