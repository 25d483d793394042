"""Leads: captured from campaigns, assigned, followed up, then qualified and converted or dropped."""

from __future__ import annotations

from uuid import UUID

from domain.base import CrmAggregate, Meta, require_choice, require_text
from domain.campaign import Campaign, require_variant_of, respond
from domain.errors import DomainError
from domain.external_ids import record_id
from domain.properties import HasProperties, apply_changes
from domain.vocabulary import (ACQUISITION_CHANNEL, ASSIGNMENT_RULES, DEFAULT_VOCABULARIES, INDUSTRY, REGION,
                               TOUCH_CHANNEL, Vocabularies)

NEW, QUALIFIED, DISQUALIFIED, CONVERTED = "new", "qualified", "disqualified", "converted"
# What a lead's status must be for each step; the commands below and `crm import`'s checks
# (`services.history.rules.lead_lifecycle`, on a compact state per lead) both ask `require_status`.
ALLOWED: dict[str, tuple[str, ...]] = {
    "assign": (NEW, QUALIFIED),
    "contact": (NEW, QUALIFIED),
    "qualify": (NEW,),
    "disqualify": (NEW, QUALIFIED),
    "convert": (QUALIFIED,),
}


def require_status(status: str, action: str) -> None:
    if status not in ALLOWED[action]:
        raise DomainError(f"cannot {action} a {status} lead")


def require_owner(owner: str | None) -> None:
    if owner is None:
        raise DomainError("assign the lead to an owner before contacting it")


def require_converted_into(lead: Lead, customer_id: UUID | None) -> None:
    """A response naming a lead and a customer names one respondent: the lead and the customer it became."""
    if customer_id is not None and getattr(lead, "customer_id", None) != customer_id:
        raise DomainError(f"lead {lead.id} was not converted into customer {customer_id}: a response names one "
                          "respondent (a lead, a customer, or a lead and the customer it was converted into)")


def require_contacted(contacted: bool) -> None:
    if not contacted:
        raise DomainError("contact the lead before qualifying it")


class Lead(HasProperties, CrmAggregate):
    class Captured(CrmAggregate.Created):
        """Version 2 added `external_id` ("<source>:<id>" of the record it was imported from; "" when none);
        version 3 `variant`, the key of its campaign's variant it came from ("" when none)."""

        class_version = 3
        name: str
        company: str
        region: str
        industry: str
        channel: str
        contact: str
        campaign_id: UUID | None
        external_id: str
        variant: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["external_id"] = ""

        @staticmethod
        def upcast_v2_v3(state: dict[str, object]) -> None:
            state["variant"] = ""

        def apply(self, lead: Lead) -> None:
            lead.name = self.name
            lead.company = self.company
            lead.region = self.region
            lead.industry = self.industry
            lead.channel = self.channel
            lead.contact_details = self.contact
            lead.campaign_id = self.campaign_id
            lead.external_id = self.external_id
            lead.variant = self.variant
            lead.owner = None
            lead.customer_id = None
            lead.status = NEW
            lead.contacted = False

    class Assigned(CrmAggregate.Event):
        owner: str
        rule: str

        def apply(self, lead: Lead) -> None:
            lead.owner = self.owner

    class Contacted(CrmAggregate.Event):
        channel: str
        summary: str

        def apply(self, lead: Lead) -> None:
            lead.contacted = True

    class Qualified(CrmAggregate.Event):
        note: str

        def apply(self, lead: Lead) -> None:
            lead.status = QUALIFIED

    class Disqualified(CrmAggregate.Event):
        reason: str

        def apply(self, lead: Lead) -> None:
            lead.status = DISQUALIFIED

    class Converted(CrmAggregate.Event):
        customer_id: UUID
        deal_id: UUID

        def apply(self, lead: Lead) -> None:
            lead.status = CONVERTED
            lead.customer_id = self.customer_id

    class PropertiesChanged(CrmAggregate.Event):
        """Named properties set (a value) or removed ("") — see `domain.properties`."""

        changes: dict[str, str]

        def apply(self, lead: Lead) -> None:
            apply_changes(lead, self.changes)

    class RespondedToCampaign(CrmAggregate.Event):
        """The lead responded to a running campaign (`domain.campaign.respond`): recorded on the respondent's
        stream, so that a big campaign's responses never contend for one aggregate. The same fact as an
        older log's `Campaign.ResponseRecorded` naming this lead. Version 2 added `variant`, the key of the
        campaign's variant responded to ("" when none)."""

        class_version = 2
        campaign_id: UUID
        kind: str
        variant: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["variant"] = ""

    @classmethod
    def capture(
        cls,
        name: str | None,
        company: str,
        region: str | None,
        industry: str | None,
        channel: str | None,
        meta: Meta,
        *,
        contact: str = "",
        campaign_id: UUID | None = None,
        external_id: str = "",
        id: UUID | None = None,  # noqa: A002
        vocabularies: Vocabularies = DEFAULT_VOCABULARIES,
        variant: str = "",
        campaign: Campaign | None = None,
    ) -> Lead:
        """A lead may be nameless (exports of marketing-qualified leads have none): its name is then "" (shown
        as unknown). Region, industry and channel as for a customer (`Customer.register`). A lead captured
        from a variant names it (`campaign`, as read, must define it and not have stopped it)."""
        return cls._open(
            cls.Captured,
            meta,
            id=record_id("lead", external_id, id),
            name=(name or "").strip(),
            company=company.strip(),
            region=vocabularies[REGION].check(region),
            industry=vocabularies[INDUSTRY].check(industry),
            channel=vocabularies[ACQUISITION_CHANNEL].check(channel),
            contact=contact.strip(),
            campaign_id=campaign_id,
            external_id=external_id,
            variant=require_variant_of(campaign, campaign_id, variant.strip()),
        )

    def assign(self, owner: str, rule: str, meta: Meta) -> None:
        require_status(self.status, "assign")
        owner = require_text(owner, "owner")
        if owner == self.owner:
            raise DomainError(f"lead is already assigned to {owner!r}")
        self._record(self.Assigned, meta, owner=owner, rule=require_choice(rule, ASSIGNMENT_RULES, "assignment rule"))

    def contact(self, channel: str | None, summary: str, meta: Meta,
                vocabularies: Vocabularies = DEFAULT_VOCABULARIES) -> None:
        require_status(self.status, "contact")
        require_owner(self.owner)
        self._record(self.Contacted, meta, channel=vocabularies[TOUCH_CHANNEL].check(channel), summary=summary)

    def qualify(self, note: str, meta: Meta) -> None:
        require_status(self.status, "qualify")
        require_contacted(self.contacted)
        self._record(self.Qualified, meta, note=note)

    def disqualify(self, reason: str, meta: Meta) -> None:
        require_status(self.status, "disqualify")
        self._record(self.Disqualified, meta, reason=require_text(reason, "disqualification reason"))

    def respond_to_campaign(self, campaign: Campaign, kind: str, meta: Meta, variant: str = "") -> None:
        """Any lead may respond, whatever its status (a converted one's responses show on its customer)."""
        self._record(self.RespondedToCampaign, meta, **respond(campaign, kind, variant.strip()))

    def convert(self, customer_id: UUID, deal_id: UUID, meta: Meta) -> None:
        require_status(self.status, "convert")
        self._record(self.Converted, meta, customer_id=customer_id, deal_id=deal_id)
