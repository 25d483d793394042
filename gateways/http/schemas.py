"""Building blocks of request and response bodies: bounded text, amounts, business time, versions.

Scalars are strict (no "1" for 1, no 1 for true); text has length limits and no NUL character (PostgreSQL
cannot store it); business time and dates are ISO 8601 text within the domain's 1900–2999; unknown fields
are refused.
Each route module declares its own bodies from these.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
)

from domain.base import BUSINESS_YEARS, EARLIEST, LATEST

NO_NUL = r"^[^\x00]*$"
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
Label = Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)]
Text = Annotated[str, StringConstraints(max_length=4000, pattern=NO_NUL)]
Email = Annotated[str, StringConstraints(max_length=254, pattern=NO_NUL)]
Phone = Annotated[str, StringConstraints(max_length=50, pattern=NO_NUL)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NO_NUL)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
StageKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Amount = Annotated[
    Annotated[str, StringConstraints(pattern=r"^[0-9]{1,15}(\.[0-9]{1,4})?$")]
    | Annotated[StrictInt, Field(ge=0, le=999_999_999_999_999)],  # 15 digits either way: cents fit a BIGINT
    Field(description='A non-negative amount as a decimal string ("12000.50") or an integer; never a float.'),
]


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_text(value: Any) -> Any:
    """Only ISO 8601 text (or a datetime): pydantic alone also reads Unix seconds (1772355600, "0.5")."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise ValueError("must be ISO 8601 text with a zone, like 2026-03-01T09:00:00+08:00")


def _iso_day_text(value: Any) -> Any:
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise ValueError("must be an ISO 8601 date like 2026-06-30")


def _business_years(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be {BUSINESS_YEARS}")
    return value


def _business_days(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(f"must be {BUSINESS_YEARS}")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_business_years)]
Day = Annotated[date, BeforeValidator(_iso_day_text), AfterValidator(_business_days)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommandBody(Body):
    """Every command may say when it happened in business time (default: now)."""

    occurred_at: Instant | None = Field(
        None, description="Business time, ISO 8601 with a zone (2026-03-01T09:00:00+08:00); default now.")


class VersionedBody(CommandBody):
    """A change that may name the version the caller saw (same as If-Match)."""

    expected_version: StrictInt | None = Field(None, ge=1, description="Refused with 409 if the aggregate moved on.")


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
