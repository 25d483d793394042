"""Ids a record had in the system it came from (a Salesforce opportunity "006Dn00000AbCdE", a HubSpot deal
"1C1I7A6R"), and the CRM id each one gets.

An imported record's id is derived from its source's name and its id there, so importing the same export
twice finds the same records rather than making copies, and two sources that happen to use the same id
("1001" in both a ticket system and a CRM) never collide. A deal's or ticket's derived id is then placed in its
customer's home partition (`imported_id`, `domain.partitions`): still deterministic, but `source:id` alone no
longer says which of 64 ids it is — lookups go through the external ids read model. The source's id itself is kept on the record's
creation event (`external_id`), so every lookup can take it instead of the UUID. Tables of one system that
number their rows separately are separate sources: the CSV import keeps contacts as `<source>-contact`
(`hubspot-contact:5001` beside the company `hubspot:5001`); the bare id finds either while it is unique.
"""

from __future__ import annotations

import re
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from domain.base import CONTACT_DETAILS
from domain.errors import DomainError
from domain.partitions import in_partition, partition_of

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


# --- the external id a creation event keeps: "<source>:<id>", or "" when the record came from nowhere else ---

NONE = ""
_PERSONAL_KINDS = ("customer", "lead")  # records of people: their external id must not be contact details


def qualified(source: str, external_id: str) -> str:
    """The form a creation event keeps, `"<source>:<id>"` (e.g. `"salesforce:006Dn00000AbCdE"`)."""
    return f"{check_source(source)}:{check_external_id(external_id)}"


def parts(external_id: str) -> tuple[str, str]:
    """The source and the bare id of a kept external id (split at the first colon: ids may hold colons)."""
    source, colon, bare = external_id.partition(":")
    if not colon:
        raise DomainError(f'external id {external_id!r} must be "<source>:<id>", like salesforce:006Dn00000AbCdE')
    return source, bare


def check_qualified(external_id: str, kind: str) -> str:
    """A creation event's `external_id`: "" (none) or `"<source>:<id>"` with both parts valid and the id
    without surrounding spaces, as `qualified` writes it. For a customer or a lead it may not be contact
    details (an e-mail address or a phone number, `domain.base.CONTACT_DETAILS`): it is stored unsealed, like
    a UUID (forgetting a person keeps it), so it must identify, not describe, them."""
    if external_id == NONE:
        return NONE
    if not isinstance(external_id, str):
        raise DomainError(f"external id must be text, not {type(external_id).__name__}")
    source, bare = parts(external_id)
    if qualified(source, bare) != external_id:
        raise DomainError(f"external id {external_id!r} must not start or end with spaces")
    if kind in _PERSONAL_KINDS and _is_contact_detail(bare):
        raise DomainError(f"a {kind}'s external id must not be an e-mail address or a phone number: it is "
                          "stored unsealed and kept when the person is forgotten")
    return external_id


def _is_contact_detail(bare: str) -> bool:
    """An e-mail address or a phone number, as `domain.base.CONTACT_DETAILS` finds them in a dimension, except
    an id of digits only: record numbers are digits (HubSpot's company and contact ids have 8 to 12), and
    refusing them would make those exports unimportable; a phone number written with "+", spaces, dashes or
    brackets is still refused."""
    return not bare.isdigit() and CONTACT_DETAILS.search(bare) is not None


def record_id(kind: str, external_id: str, chosen: UUID | None = None, partition: int | None = None) -> UUID:
    """The id of a new `kind` record: derived from its external id when it has one (an explicit `chosen`
    id that differs is refused), else `chosen` or a new random one. A record made in its parent's home
    partition (`partition`: a deal's or ticket's customer's, a converted customer's lead's) gets an id there
    (`domain.partitions`): the derived one placed in it (`imported_id`), a new one made in it, and a chosen
    one outside it is refused."""
    if check_qualified(external_id, kind) == NONE:
        if chosen is None:
            return uuid4() if partition is None else in_partition(partition)
        require_in_partition(chosen, partition, kind)
        return chosen
    derived = imported_id(kind, external_id, partition)
    if chosen is not None and chosen != derived:
        raise DomainError(f"id {chosen} is not the id of {kind} {external_id} ({derived}): "
                          "send that id, or none")
    return derived


def imported_id(kind: str, external_id: str, partition: int | None = None) -> UUID:
    """The id of the `kind` record with kept external id `"<source>:<id>"`: `external_uuid`'s, placed in
    `partition` when the record lives in its parent's (a deal or ticket: its customer's). Still deterministic
    (the same external id and customer always give the same id), but no longer computable from the external id
    alone: finding a deal by `source:id` asks the external ids read model (`projections.external_ids`)."""
    derived = external_uuid(kind, *parts(external_id))
    return derived if partition is None else in_partition(partition, derived)


def require_in_partition(chosen: UUID, partition: int | None, kind: str) -> None:
    """An id given from outside (a command's `id`) for a record that must live in `partition`."""
    if partition is not None and partition_of(chosen) != partition:
        raise DomainError(f"id {chosen} is in home partition {partition_of(chosen)}, but this {kind} belongs in "
                          f"partition {partition} (its {'lead' if kind == 'customer' else 'customer'}'s, the id's "
                          "low 6 bits): send an id in that partition, or none")


def bare_id(external_id: str) -> str:
    """The source's own id of a kept external id ("006Dn00000AbCdE" of "salesforce:006Dn00000AbCdE")."""
    return external_id.partition(":")[2]
