"""Commands on leads: capture, assign, contact, qualify, disqualify, convert (→ a customer and a deal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

from domain.lead import Lead
from domain.vocabulary import ASSIGNMENT_RULES, UNKNOWN
from services.commands.command import Change, Command
from services.commands.customers import NewParty
from services.commands.field_types import Amount, Currency, Day, Email, Label, Name, Phone, Properties, Text


@dataclass(frozen=True, slots=True)
class CaptureLead(NewParty):
    name: Label = ""  # exports of marketing-qualified leads often have none
    contact: Label = field(default="", kw_only=True)
    campaign_id: UUID | None = field(default=None, kw_only=True)
    variant: Label = field(default="", kw_only=True)  # the campaign's variant it came from ("" none)


@dataclass(frozen=True, slots=True)
class LeadChange(Change):
    aggregate, address = Lead, "lead_id"
    lead_id: UUID


@dataclass(frozen=True, slots=True)
class AssignLead(LeadChange):
    owner: Name
    rule: Literal[ASSIGNMENT_RULES] = "manual"  # type: ignore[valid-type]


@dataclass(frozen=True, slots=True)
class ContactLead(LeadChange):
    channel: Label = UNKNOWN  # a touch channel of the vocabulary
    summary: Text = ""


@dataclass(frozen=True, slots=True)
class QualifyLead(LeadChange):
    note: Text = ""


@dataclass(frozen=True, slots=True)
class DisqualifyLead(LeadChange):
    reason: Text


@dataclass(frozen=True, slots=True)
class ConvertLead(Command):
    """Turn a qualified lead into a customer and an open sales deal, atomically.

    Not a Change: it creates two aggregates, and over HTTP it never took a version (If-Match is ignored)."""

    lead_id: UUID
    deal_title: Name
    amount: Amount
    currency: Currency = "CNY"
    email: Email = ""
    phone: Phone = ""
    expected_close: Day | None = None


@dataclass(frozen=True, slots=True)
class ChangeLeadProperties(LeadChange):
    """Set the lead's named properties (product, team, …); "" removes one (`domain.properties`)."""

    changes: Properties
