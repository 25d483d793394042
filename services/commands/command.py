"""What every command is: plain, frozen, typed data; a change also names its aggregate and the version the
caller saw.

Frozen dataclasses, not pydantic models: a command is built by code that has already checked its input
(the HTTP body, derived from the command, with its refusals worded as before; the Kafka message with its
own sentences; the CLI's arguments), so checking again here would only add a second, differently worded
refusal. The domain still enforces every business rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar
from uuid import UUID

from domain.base import CrmAggregate
from domain.errors import DomainError
from domain.external_ids import NONE, qualified
from services.commands.field_types import ExternalId, Source


ABSENT = "absent"  # a field's metadata key: the value a body or an argument left out stands for


def absent_means(value: str) -> Any:
    """A positional field callers may leave out of a body (HTTP) or the arguments (CLI): then it is `value`.
    Positional still, so that code building the command by position keeps working."""
    return field(metadata={ABSENT: value})


@dataclass(frozen=True, slots=True)
class Command:
    """A request to record something; the application's `handle` runs it."""

    trailing: ClassVar[tuple[str, ...]] = ()  # a base's optional fields, sent after the command's own

    @classmethod
    def own_fields(cls) -> tuple[str, ...]:
        """The fields a caller sends, in order: all but the envelope (a creation's chosen `id`; a change's
        address and `expected_version`, which come from the URL and If-Match)."""
        envelope = {"id", "expected_version", getattr(cls, "address", "")}
        names = [f.name for f in fields(cls) if f.name not in envelope]
        return (*(n for n in names if n not in cls.trailing), *(n for n in names if n in cls.trailing))


@dataclass(frozen=True, slots=True)
class Creation(Command):
    """A command that creates an aggregate; `id` lets an import or a test choose it (default: a new one)."""

    id: UUID | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class ImportableCreation(Creation):
    """A creation of a record another system may know (customer, lead, deal, ticket, campaign): `source` and
    `external_id` name it there (both or neither). Its id is then derived from them, so creating it again
    is refused rather than making a second one, and every lookup can take `source:id` or the bare id."""

    trailing = ("source", "external_id")
    source: Source | None = field(default=None, kw_only=True)
    external_id: ExternalId | None = field(default=None, kw_only=True)

    def kept_external_id(self) -> str:
        """What the creation event keeps: `"<source>:<id>"`, or "" when neither is given."""
        if self.source is None and self.external_id is None:
            return NONE
        if self.source is None or self.external_id is None:
            raise DomainError("give both source and external_id (the record's id in that source), or neither")
        return qualified(self.source, self.external_id)


@dataclass(frozen=True, slots=True)
class Change(Command):
    """A command on an existing aggregate, refused if it is not at `expected_version` (when given).

    The version travels in the command from If-Match (or the body's `expected_version`) to the check
    before the aggregate is changed: one explicit path, no ambient state."""

    aggregate: ClassVar[type[CrmAggregate]]
    address: ClassVar[str]  # the field holding the aggregate's id, named by each aggregate's base
    expected_version: int | None = field(default=None, kw_only=True)

    @property
    def aggregate_id(self) -> UUID:
        return getattr(self, self.address)  # type: ignore[no-any-return]
