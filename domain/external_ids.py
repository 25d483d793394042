"""Ids a record had in the system it came from (a Salesforce opportunity "006Dn00000AbCdE", a HubSpot deal
"1C1I7A6R"), and the CRM id each one gets.

An imported record's id is derived from its source's name and its id there, so importing the same export
twice finds the same records rather than making copies, and two sources that happen to use the same id
("1001" in both a ticket system and a CRM) never collide. The source's id itself is kept on the record's
creation event (`external_id`), so every lookup can take it instead of the UUID.
"""

from __future__ import annotations

import re
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import DomainError

KINDS = ("customer", "lead", "deal", "ticket", "campaign")
_SOURCE = re.compile(r"[a-z][a-z0-9_-]{0,39}")
MAX_LENGTH = 200  # Salesforce ids are 15 or 18 characters, HubSpot's up to 20 digits: 200 is ample


def check_source(source: str) -> str:
    """A source system's name as the mapping file gives it: lower-case letters, digits, _ or - (max 40)."""
    if not isinstance(source, str) or not _SOURCE.fullmatch(source):
        raise DomainError(f"source {source!r} must be lower-case letters, digits, _ or - (max 40), like salesforce")
    return source


def check_external_id(external_id: str) -> str:
    """A record's id in its source: not blank, at most 200 characters, kept verbatim (case matters:
    Salesforce's 15-character ids differ only by case)."""
    if not isinstance(external_id, str) or not external_id.strip():
        raise DomainError("external id must not be empty")
    if len(external_id) > MAX_LENGTH or "\x00" in external_id:
        raise DomainError(f"external id must be at most {MAX_LENGTH} characters, without NUL")
    return external_id.strip()


def external_uuid(kind: str, source: str, external_id: str) -> UUID:
    """The CRM id of the `kind` record (customer, lead, deal, ticket, campaign) that `source` calls
    `external_id`: the same arguments always give the same id."""
    if kind not in KINDS:
        raise DomainError(f"unknown kind of record {kind!r}; expected one of: {', '.join(KINDS)}")
    return uuid5(NAMESPACE_URL, f"crm:{check_source(source)}:{kind}:{check_external_id(external_id)}")
