"""Request and response bodies: a command's body is derived from the command (`body_of`), plus business time
and, on a versioned change, `expected_version`.

Scalars are strict (no "1" for 1, no 1 for true); text has length limits and no NUL character (PostgreSQL
cannot store it); business time and dates are ISO 8601 text within the domain's 1900–2999; unknown fields
are refused. The field types live with the commands (services/commands/field_types.py); `NO_NUL` and `Instant`
are re-exported here for the query parameters.
"""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, create_model

from services.commands import Command
from services.commands.command import ABSENT
from services.commands.field_types import NO_NUL, Instant

__all__ = ["ERRORS", "NO_NUL", "Body", "Changed", "CommandBody", "Created", "ErrorOut", "Instant",
           "VersionedBody", "body_of"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommandBody(Body):
    """Every command may say when it happened in business time (default: now)."""

    occurred_at: Instant | None = Field(
        None, description="Business time, ISO 8601 with a zone (2026-03-01T09:00:00+08:00); default now.")

    def fields(self) -> dict[str, Any]:
        """The command's own fields as sent (business time goes to the Meta, the version to the command
        only through `CommandContext.expected_version`, which also reads If-Match)."""
        return {name: getattr(self, name) for name in type(self).model_fields
                if name not in ("occurred_at", "expected_version")}


class VersionedBody(CommandBody):
    """A change that may name the version the caller saw (same as If-Match)."""

    expected_version: StrictInt | None = Field(None, ge=1, description="Refused with 409 if the aggregate moved on.")


def body_of(command: type[Command], name: str | None = None, *, versioned: bool = False,
            from_url: tuple[str, ...] = ()) -> type[CommandBody]:
    """The JSON body of `command`: its own fields with their types, defaults and limits, in order, but those
    the URL carries; `name` keeps the schema's name in the API document. Why derived: a command's fields
    are written once, in services/commands/."""
    hints = get_type_hints(command, include_extras=True)
    by_name = {f.name: f for f in dataclasses.fields(command)}
    sent = [by_name[name] for name in command.own_fields() if name not in from_url]
    fields: dict[str, Any] = {f.name: (hints[f.name], _default(f)) for f in sent}
    base = VersionedBody if versioned else CommandBody
    return create_model(name or command.__name__, __base__=base, __module__=__name__, **fields)


def _default(field: dataclasses.Field[Any]) -> Any:
    """A field's default in a body: the dataclass's, else what leaving it out means (`absent_means`), else required."""
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.metadata.get(ABSENT, ...)


class Created(BaseModel):
    id: UUID
    version: int


class Changed(BaseModel):
    id: UUID
    version: int


class ErrorOut(BaseModel):
    error: str
    detail: Any = None


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "Malformed JSON or header"), (401, "Missing or unknown bearer token"),
        (403, "The role may not do this"), (404, "Unknown id"), (409, "Stale version, concurrent write or "
                                                                     "a retry still in progress"),
        (413, "Body over 64 KiB"), (415, "Not application/json"), (422, "Invalid body or a business rule refused it"),
    )
}
