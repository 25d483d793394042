"""Campaigns: budget, recorded cost and the responses they bring, for ROI and CAC."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from domain import campaign_variants as variant_rules
from domain import money
from domain.base import CrmAggregate, Meta, require_choice, require_text
from domain.errors import DomainError
from domain.external_ids import record_id
from domain.vocabulary import ACQUISITION_CHANNEL, DEFAULT_VOCABULARIES, RESPONSE_KINDS, Vocabularies

PLANNED, LAUNCHED, CLOSED = "planned", "launched", "closed"
# What a campaign's status must be for each step, and the refusal otherwise; the commands below and
# `crm import`'s checks (`services.history.rules.campaign_lifecycle`, on a compact state per campaign) both
# ask `require_status`.
REQUIRED: dict[str, tuple[str, str]] = {
    "launch": (PLANNED, "only a planned campaign can be launched"),
    "record_response": (LAUNCHED, "responses are recorded only while a campaign runs"),
    "close": (LAUNCHED, "only a running campaign can be closed"),
}


def require_status(status: str, action: str) -> None:
    required, refusal = REQUIRED[action]
    if status != required:
        raise DomainError(f"{refusal}; this one is {status}")


def require_respondent(customer_id: UUID | None, lead_id: UUID | None) -> None:
    if customer_id is None and lead_id is None:
        raise DomainError("a response names the customer or the lead who responded")


def respond(campaign: Campaign, kind: str, variant: str = "") -> dict[str, object]:
    """The fields of a response to `campaign`, recorded on the respondent's stream (`Lead.respond_to_campaign`,
    `Customer.respond_to_campaign`): only a running campaign takes responses, and only for a variant it
    defines and has not stopped ("" none). Checked against the campaign as read, not by writing to it: a
    response never touches the campaign's stream, so any number of them are saved at once (a close or a
    stop saved meanwhile may let one more in)."""
    require_status(campaign.status, "record_response")
    return {"campaign_id": campaign.id, "kind": require_choice(kind, RESPONSE_KINDS, "response kind"),
            "variant": campaign.open_variant(variant)}


def require_variant_of(campaign: Campaign | None, campaign_id: UUID | None, variant: str) -> str:
    """A lead captured from a variant ("" none) names its campaign, which defines it and has not stopped it."""
    if variant == variant_rules.NONE:
        return variant
    if campaign_id is None or campaign is None or campaign.id != campaign_id:
        raise DomainError(f"variant {variant!r} names a variant of a campaign: give the campaign too")
    return campaign.open_variant(variant)


def require_launched_before(status: str) -> None:
    """`crm import`'s check of a response on a respondent's stream: the campaign had been launched. It may be
    closed by then: a response is checked against the campaign without writing to it, so one saved while the
    campaign was being closed can follow the close in the log (`respond`)."""
    if status == PLANNED:
        raise DomainError("responses are recorded only once a campaign is launched; this one is planned")


def require_cost(amount: Decimal | int | str) -> Decimal:
    """A cost to record: an amount (`money.amount`), and more than zero."""
    parsed = money.amount(amount, "cost")
    if parsed == 0:
        raise DomainError("cost must be greater than zero")
    return parsed


class Campaign(CrmAggregate):
    class Planned(CrmAggregate.Created):
        """Version 2 added `external_id` ("<source>:<id>" of the record it was imported from; "" when none)."""

        class_version = 2
        name: str
        channel: str
        budget: Decimal
        currency: str
        external_id: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["external_id"] = ""

        def apply(self, campaign: Campaign) -> None:
            campaign.name = self.name
            campaign.channel = self.channel
            campaign.budget = self.budget
            campaign.currency = self.currency
            campaign.external_id = self.external_id
            campaign.cost = Decimal(0)
            campaign.status = PLANNED
            campaign.variants = {}
            campaign.stopped_variants = frozenset()
            campaign.winner = ""

    class Launched(CrmAggregate.Event):
        def apply(self, campaign: Campaign) -> None:
            campaign.status = LAUNCHED

    class CostRecorded(CrmAggregate.Event):
        amount: Decimal
        note: str

        def apply(self, campaign: Campaign) -> None:
            campaign.cost += self.amount

    class ResponseRecorded(CrmAggregate.Event):
        """A response, as logs before home partitions recorded it: on the campaign's stream. Still read as the
        same fact as `Lead.RespondedToCampaign` / `Customer.RespondedToCampaign` of the respondent it names;
        no longer recorded by commands."""

        kind: str
        customer_id: UUID | None
        lead_id: UUID | None

    class Closed(CrmAggregate.Event):
        def apply(self, campaign: Campaign) -> None:
            campaign.status = CLOSED

    class VariantsDefined(CrmAggregate.Event):
        """The campaign's variants, in order (the first is the control): each a dict of
        `domain.campaign_variants.FIELDS`. A redefinition replaces them and keeps every key defined before."""

        variants: list[dict[str, Any]]
        reason: str

        def apply(self, campaign: Campaign) -> None:
            campaign.variants = {variant["key"]: variant for variant in self.variants}

    class ExposuresRecorded(CrmAggregate.Event):
        """`count` more of the variant sent or shown (the first step of its funnel); `note` says from where."""

        variant: str
        count: int
        note: str

    class VariantStopped(CrmAggregate.Event):
        """The variant takes no more exposures, responses or leads."""

        variant: str
        reason: str

        def apply(self, campaign: Campaign) -> None:
            campaign.stopped_variants = campaign.stopped_variants | {self.variant}

    class WinnerDeclared(CrmAggregate.Event):
        """Someone judged the test: this variant won (a later declaration replaces it)."""

        variant: str
        reason: str

        def apply(self, campaign: Campaign) -> None:
            campaign.winner = self.variant

    @classmethod
    def plan(
        cls,
        name: str,
        channel: str | None,
        budget: Decimal | int | str,
        currency: str,
        meta: Meta,
        *,
        external_id: str = "",
        id: UUID | None = None,  # noqa: A002
        vocabularies: Vocabularies = DEFAULT_VOCABULARIES,
    ) -> Campaign:
        """Its channel is one of the acquisition channels (`unknown` when absent)."""
        return cls._open(
            cls.Planned,
            meta,
            id=record_id("campaign", external_id, id),
            name=require_text(name, "campaign name"),
            channel=vocabularies[ACQUISITION_CHANNEL].check(channel, "campaign channel"),
            budget=money.amount(budget, "budget"),
            currency=money.currency(currency),
            external_id=external_id,
        )

    def launch(self, meta: Meta) -> None:
        require_status(self.status, "launch")
        self._record(self.Launched, meta)

    def record_cost(self, amount: Decimal | int | str, meta: Meta, note: str = "") -> None:
        parsed = require_cost(amount)
        self._record(self.CostRecorded, meta, amount=parsed, note=note)

    def record_response(
        self, kind: str, meta: Meta, *, customer_id: UUID | None = None, lead_id: UUID | None = None
    ) -> None:
        """A response on the campaign's own stream, as before home partitions: only for writing such a log
        (tests of old logs); commands record it on the respondent's (`respond`)."""
        require_status(self.status, "record_response")
        require_respondent(customer_id, lead_id)
        self._record(
            self.ResponseRecorded,
            meta,
            kind=require_choice(kind, RESPONSE_KINDS, "response kind"),
            customer_id=customer_id,
            lead_id=lead_id,
        )

    def close(self, meta: Meta) -> None:
        require_status(self.status, "close")
        self._record(self.Closed, meta)

    # --- variants (A/B tests) ----------------------------------------------------------------------------

    @property
    def variant_keys(self) -> tuple[str, ...]:
        """The keys of its variants, control first."""
        return tuple(self.variants)

    @property
    def variant_state(self) -> variant_rules.VariantState:
        """What `crm import`'s checks keep of its variants: keys, the stopped ones, the declared winner."""
        return variant_rules.VariantState(self.variant_keys, frozenset(self.stopped_variants), self.winner)

    def open_variant(self, variant: str) -> str:
        """`variant` ("" none) is defined here and not stopped: it may take exposures, responses and leads."""
        return variant_rules.require_open(self.variants, self.stopped_variants, variant)

    def define_variants(self, variants: list[dict[str, Any]], meta: Meta, reason: str = "") -> None:
        parsed = variant_rules.require_definition(self.status, self.variant_keys, variants)
        if parsed == list(self.variants.values()):
            raise DomainError("the campaign's variants are already defined so")
        self._record(self.VariantsDefined, meta, variants=parsed, reason=reason.strip())

    def record_exposures(self, variant: str, count: int | str, meta: Meta, note: str = "") -> None:
        count = variant_rules.require_count(count)
        variant = variant_rules.require_step(self.status, self.variant_state, "expose", variant)
        self._record(self.ExposuresRecorded, meta, variant=variant, count=count, note=note)

    def stop_variant(self, variant: str, reason: str, meta: Meta) -> None:
        variant = variant_rules.require_step(self.status, self.variant_state, "stop", variant)
        self._record(self.VariantStopped, meta, variant=variant, reason=require_text(reason, "reason"))

    def declare_winner(self, variant: str, reason: str, meta: Meta) -> None:
        variant = variant_rules.require_step(self.status, self.variant_state, "declare_winner", variant)
        self._record(self.WinnerDeclared, meta, variant=variant, reason=require_text(reason, "reason"))
