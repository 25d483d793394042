"""Which event fields may hold personal data, and whose: the person a record is about (its data subject).

Infrastructure encrypts these fields with a key per record, bound to the person it is about; forgetting
someone destroys every key bound to them (crypto-shredding), so their personal data becomes unreadable
everywhere — the log, read models, exports, Kafka copies — while every other fact (and so every funnel and
count) stays intact.

Every free-text field an event carries about a customer or a lead is listed, whatever its intent: a deal
title, a loss reason or a ticket reply is written by people about a person and often names them. Fields
that are left out, and why:
- ids, times, money, currencies, stages, statuses, priorities, channels, kinds, scores, consent: facts the
  funnels and reports count, chosen from fixed vocabularies or numbers;
- region and industry: the segmentation dimensions every read model groups by (a sealed dimension could not
  be grouped); they describe a market, not a person;
- owners, assignees, actors: the CRM's own staff, who are not the data subject of a customer's record;
- campaigns and pipelines (names, labels, cost notes): about the business, not about any person.
"""

from __future__ import annotations

from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.ticket import Ticket

PREFIX = "pii:v1:"  # a sealed value: pii:v1:<record id>:<nonce + ciphertext, base64url>

PERSONAL_FIELDS: dict[type, tuple[str, ...]] = {
    Customer.Registered: ("name", "company", "email", "phone"),
    Customer.ContactDetailsChanged: ("email", "phone"),
    Customer.TouchLogged: ("summary",),
    Customer.TagAdded: ("tag",),
    Customer.TagRemoved: ("tag",),
    Lead.Captured: ("name", "company", "contact"),
    Lead.Contacted: ("summary",),
    Lead.Qualified: ("note",),
    Lead.Disqualified: ("reason",),
    Deal.Opened: ("title",),
    Deal.StageChanged: ("reason",),
    Deal.Won: ("note",),
    Deal.Lost: ("reason", "competitor"),
    Deal.Reopened: ("reason",),
    Deal.ExpectedCloseChanged: ("reason",),
    Deal.ProbabilityChanged: ("reason",),
    Deal.ForecastCategoryChanged: ("reason",),
    Ticket.Opened: ("subject",),
    Ticket.CustomerReplied: ("message",),
    Ticket.Resolved: ("resolution",),
    Ticket.SatisfactionRated: ("comment",),
    Ticket.Reopened: ("reason",),
}

PERSON_FIELD: dict[type, str] = {Deal.Opened: "customer_id", Ticket.Opened: "customer_id"}
"""Creation events of records about a person other than the record itself: the field naming that person.
A customer's and a lead's records are about themselves; a lead's key is bound to its customer when
forgetting finds the conversion."""

PERSON_ATTRIBUTE: dict[type, str] = {Deal: "customer_id", Ticket: "customer_id"}
"""The same, as the aggregate's attribute (for records whose creation event is not at hand)."""

PERSONAL_ATTRIBUTES: dict[type, tuple[str, ...]] = {Deal: ("title",), Ticket: ("subject",)}
"""Attributes of cached aggregate types that hold personal data: a process keeps no plain copy of them."""


class PersonalText(str):
    """Readable personal text that remembers its sealed form, so a read model can keep the seal instead."""

    sealed: str

    def __new__(cls, plain: str, sealed: str) -> PersonalText:
        text = super().__new__(cls, plain)
        text.sealed = sealed
        return text

    def __getnewargs__(self) -> tuple[str, str]:  # so copies (e.g. from the aggregate cache) keep the seal
        return str(self), self.sealed


def mark(value: str) -> str:
    """What a read model should store for a value: the seal of personal text (see `KeyStore.unseal_marks`)."""
    if isinstance(value, PersonalText):
        return f"⟦{value.sealed}⟧"
    return f"⟦{value}⟧" if value.startswith(PREFIX) else value


def subject_of_seal(sealed: str) -> str:
    """The record whose key sealed this value."""
    return sealed.removeprefix(PREFIX).partition(":")[0]
