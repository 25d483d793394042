"""Commands on customers: register, contact details, touches, tags, consent, properties, forget."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

from pydantic import StrictBool

from domain.customer import Customer
from domain.vocabulary import TOUCH_DIRECTIONS, UNKNOWN
from services.commands.command import Change, ImportableCreation, absent_means
from services.commands.field_types import Email, Label, Name, Phone, Properties, Tag, Text


@dataclass(frozen=True, slots=True)
class NewParty(ImportableCreation):
    """Who a new customer or lead is: the fields both have (a converted lead's become its customer's).
    Region, industry and channel are checked against the installation's vocabularies; absent: `unknown`."""

    name: Name
    company: Label = field(default="", kw_only=True)
    region: Label = UNKNOWN
    industry: Label = UNKNOWN
    channel: Label = UNKNOWN


@dataclass(frozen=True, slots=True)
class RegisterCustomer(NewParty):
    email: Email = field(default="", kw_only=True)
    phone: Phone = field(default="", kw_only=True)
    campaign_id: UUID | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class CustomerChange(Change):
    aggregate, address = Customer, "customer_id"
    customer_id: UUID


@dataclass(frozen=True, slots=True)
class ChangeContactDetails(CustomerChange):
    email: Email
    phone: Phone


@dataclass(frozen=True, slots=True)
class LogTouch(CustomerChange):
    channel: Label = absent_means(UNKNOWN)  # a touch channel of the vocabulary
    direction: Literal[TOUCH_DIRECTIONS]  # type: ignore[valid-type]
    summary: Text


@dataclass(frozen=True, slots=True)
class AddTag(CustomerChange):
    tag: Tag


@dataclass(frozen=True, slots=True)
class RemoveTag(CustomerChange):
    tag: Tag


@dataclass(frozen=True, slots=True)
class ChangeConsent(CustomerChange):
    marketing: StrictBool


@dataclass(frozen=True, slots=True)
class ForgetCustomer(CustomerChange):
    """Erase the customer's personal data everywhere (their keys and those of their leads and records)."""


@dataclass(frozen=True, slots=True)
class ChangeCustomerProperties(CustomerChange):
    """Set the customer's named properties (product, team, …); "" removes one (`domain.properties`)."""

    changes: Properties
