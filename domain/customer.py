"""Customers: who they are, every touch on every channel, tags, consent, and erasure."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from domain.base import CrmAggregate, Meta, require_choice, require_text
from domain.campaign import Campaign, respond
from domain.errors import DomainError
from domain.external_ids import record_id
from domain.properties import HasProperties, apply_changes
from domain.vocabulary import (ACQUISITION_CHANNEL, DEFAULT_VOCABULARIES, INDUSTRY, REGION, TOUCH_CHANNEL,
                               TOUCH_DIRECTIONS, Vocabularies)

FORGOTTEN_NAME = "(forgotten)"


def require_not_forgotten(forgotten: bool) -> None:
    """Nothing happens to a forgotten customer (commands and `crm import`'s checks ask this)."""
    if forgotten:
        raise DomainError("customer has been forgotten; their record can no longer change")


class Customer(HasProperties, CrmAggregate):
    class Registered(CrmAggregate.Created):
        """Version 2 added `external_id` ("<source>:<id>" of the record it was imported from; "" when none)."""

        class_version = 2
        name: str
        company: str
        region: str
        industry: str
        channel: str
        email: str
        phone: str
        campaign_id: UUID | None
        external_id: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["external_id"] = ""

        def apply(self, customer: Customer) -> None:
            customer.name = self.name
            customer.company = self.company
            customer.region = self.region
            customer.industry = self.industry
            customer.channel = self.channel
            customer.email = self.email
            customer.phone = self.phone
            customer.campaign_id = self.campaign_id
            customer.external_id = self.external_id
            customer.tags = set()
            customer.marketing_consent = False
            customer.forgotten = False

    class ContactDetailsChanged(CrmAggregate.Event):
        email: str
        phone: str

        def apply(self, customer: Customer) -> None:
            customer.email = self.email
            customer.phone = self.phone

    class TouchLogged(CrmAggregate.Event):
        channel: str
        direction: str
        summary: str

    class TagAdded(CrmAggregate.Event):
        tag: str

        def apply(self, customer: Customer) -> None:
            customer.tags.add(self.tag)

    class TagRemoved(CrmAggregate.Event):
        tag: str

        def apply(self, customer: Customer) -> None:
            customer.tags.discard(self.tag)

    class ConsentChanged(CrmAggregate.Event):
        marketing: bool

        def apply(self, customer: Customer) -> None:
            customer.marketing_consent = self.marketing

    class PropertiesChanged(CrmAggregate.Event):
        """Named properties set (a value) or removed ("") — see `domain.properties`."""

        changes: dict[str, str]

        def apply(self, customer: Customer) -> None:
            apply_changes(customer, self.changes)

    class RespondedToCampaign(CrmAggregate.Event):
        """The customer responded to a running campaign (`domain.campaign.respond`), on their own stream (see
        `Lead.RespondedToCampaign`); the same fact as an older log's `Campaign.ResponseRecorded` naming them.
        Version 2 added `variant`, the key of the campaign's variant responded to ("" when none)."""

        class_version = 2
        campaign_id: UUID
        kind: str
        variant: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["variant"] = ""

    class Forgotten(CrmAggregate.Event):
        def apply(self, customer: Customer) -> None:
            customer.forgotten = True
            customer.name = FORGOTTEN_NAME
            customer.company = customer.email = customer.phone = ""
            customer.tags = set()  # tags are personal data too (domain/personal_data.py)

    @classmethod
    def register(
        cls,
        name: str,
        company: str,
        region: str | None,
        industry: str | None,
        channel: str | None,
        meta: Meta,
        *,
        email: str = "",
        phone: str = "",
        campaign_id: UUID | None = None,
        external_id: str = "",
        id: UUID | None = None,  # noqa: A002
        vocabularies: Vocabularies = DEFAULT_VOCABULARIES,
        partition: int | None = None,
    ) -> Customer:
        """Region, industry and channel are checked against `vocabularies`; absent ones are stored as `unknown`.
        A customer converted from a lead is made in the lead's home partition (`partition`: its id is made
        there, and a chosen `id` elsewhere is refused); one registered directly gets a random one."""
        return cls._open(
            cls.Registered,
            meta,
            id=record_id("customer", external_id, id, partition),
            name=require_text(name, "customer name"),
            company=company.strip(),
            region=vocabularies[REGION].check(region),
            industry=vocabularies[INDUSTRY].check(industry),
            channel=vocabularies[ACQUISITION_CHANNEL].check(channel),
            email=email.strip(),
            phone=phone.strip(),
            campaign_id=campaign_id,
            external_id=external_id,
        )

    def _require_not_forgotten(self) -> None:
        require_not_forgotten(self.forgotten)

    def change_contact_details(self, email: str, phone: str, meta: Meta) -> None:
        self._require_not_forgotten()
        if (email.strip(), phone.strip()) == (self.email, self.phone):
            raise DomainError("contact details are unchanged")
        self._record(self.ContactDetailsChanged, meta, email=email.strip(), phone=phone.strip())

    def log_touch(self, channel: str | None, direction: str, summary: str, meta: Meta,
                  vocabularies: Vocabularies = DEFAULT_VOCABULARIES) -> None:
        """A touch on a channel of the touch-channel vocabulary (`unknown` when the source did not say)."""
        self._require_not_forgotten()
        self._record(
            self.TouchLogged,
            meta,
            channel=vocabularies[TOUCH_CHANNEL].check(channel),
            direction=require_choice(direction, TOUCH_DIRECTIONS, "touch direction"),
            summary=summary.strip(),
        )

    def add_tag(self, tag: str, meta: Meta) -> None:
        self._require_not_forgotten()
        tag = require_text(tag, "tag")
        if tag in self.tags:
            raise DomainError("customer already has this tag")  # not quoted: a refusal may be stored and logged
        self._record(self.TagAdded, meta, tag=tag)

    def remove_tag(self, tag: str, meta: Meta) -> None:
        self._require_not_forgotten()
        tag = require_text(tag, "tag")
        if tag not in self.tags:
            raise DomainError("customer has no such tag")
        self._record(self.TagRemoved, meta, tag=tag)

    def change_properties(self, changes: Mapping[str, str], meta: Meta) -> None:
        self._require_not_forgotten()
        super().change_properties(changes, meta)

    def change_consent(self, marketing: bool, meta: Meta) -> None:
        self._require_not_forgotten()
        if not isinstance(marketing, bool):
            raise DomainError(f"marketing consent must be true or false, not {marketing!r}")
        if marketing == self.marketing_consent:
            raise DomainError(f"marketing consent is already {marketing}")
        self._record(self.ConsentChanged, meta, marketing=marketing)

    def respond_to_campaign(self, campaign: Campaign, kind: str, meta: Meta, variant: str = "") -> None:
        self._require_not_forgotten()
        self._record(self.RespondedToCampaign, meta, **respond(campaign, kind, variant.strip()))

    def forget(self, meta: Meta) -> None:
        self._require_not_forgotten()
        self._record(self.Forgotten, meta)
