"""`crm import`'s checks of a campaign's events: planned → launched → closed as `domain.campaign.require_status`
allows, and each response names a customer or lead that exists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain import campaign as campaign_rules
from domain import campaign_variants as variant_rules
from domain.campaign import Campaign
from domain.customer import Customer
from domain.errors import DomainError
from domain.lead import Lead
from services.history.rules.lifecycle import Engine, Rule
from services.history.rules.refusal import Refusal
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


def _state(campaign: Tracked) -> variant_rules.VariantState:
    return campaign.variant_state or variant_rules.VariantState()


def _variants_defined(rules: Engine, campaign: Tracked, variants: list[dict[str, Any]]) -> None:
    state = _state(campaign)
    try:
        keys = variant_rules.require_definition(campaign.status, state.keys, variants)
    except DomainError as error:
        raise Refusal("variants", str(error)) from None
    campaign.variant_state = state._replace(keys=tuple(variant["key"] for variant in keys))


def _variant_step(action: str) -> Callable[..., None]:
    """Exposures, a stop or a winner: as `domain.campaign_variants.require_step` allows, then folded in."""
    def step(rules: Engine, campaign: Tracked, variant: str) -> None:
        state = _state(campaign)
        try:
            variant_rules.require_step(campaign.status, state, action, variant)
        except DomainError as error:
            raise Refusal("variant", str(error)) from None
        if action == "stop":
            campaign.variant_state = state._replace(stopped=state.stopped | {variant})
        elif action == "declare_winner":
            campaign.variant_state = state._replace(winner=variant)
    return step


def refer_variant(rules: Engine, campaign_id: int | None, variant: str) -> None:
    """A response or lead naming a variant: the campaign defined it by then. Not whether it was stopped: a
    response is checked against the campaign as read (`domain.campaign.respond`), so one saved while the
    variant was being stopped may follow the stop in the log, as one may follow a close."""
    if variant == variant_rules.NONE:
        return
    if campaign_id is None:
        raise Refusal("variant", f"variant {variant!r} names a variant of a campaign: give the campaign too")
    rules.refer("campaign_id", Campaign, campaign_id,
                lambda campaign: variant_rules.require_defined(_state(campaign).keys, variant), check_field="variant")


RULES: dict[type, Rule] = {
    Campaign.Planned: _step("", campaign_rules.PLANNED),
    Campaign.Launched: _step("launch", campaign_rules.LAUNCHED),
    Campaign.ResponseRecorded: _response,
    Campaign.Closed: _step("close", campaign_rules.CLOSED),
    Campaign.VariantsDefined: _variants_defined,
    Campaign.ExposuresRecorded: _variant_step("expose"),
    Campaign.VariantStopped: _variant_step("stop"),
    Campaign.WinnerDeclared: _variant_step("declare_winner"),
}
