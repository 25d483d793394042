"""The types of command fields, with the limits every way in checks them against.

They are plain types to Python (a `Name` is a `str`); the annotations carry the limits, which pydantic reads
where text arrives (the HTTP bodies are derived from the commands, see gateways/http/schemas.py). Why here
and not in the gateway: the limits belong to the command (PostgreSQL cannot store NUL; 15 digits of an
amount fit a BIGINT of cents), and a command's fields are written once, with their types.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StrictInt, StringConstraints

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
PropertyName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Properties = Annotated[
    dict[PropertyName, Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)]],
    Field(min_length=1, max_length=50,
          description='Properties to set, {"product": "GTX Pro", "team": "华东一组"}; a value "" removes one.'),
]
Amount = Annotated[
    Annotated[str, StringConstraints(pattern=r"^[0-9]{1,15}(\.[0-9]{1,4})?$")]
    | Annotated[StrictInt, Field(ge=0, le=999_999_999_999_999)],  # 15 digits either way: cents fit a BIGINT
    Field(description='A non-negative amount as a decimal string ("12000.50") or an integer; never a float.'),
]

Probability = Annotated[StrictInt, Field(ge=0, le=100, description="Whole percent, 0 to 100.")]
Category = Annotated[str, StringConstraints(max_length=20, pattern=NO_NUL),
                     Field(description="pipeline, best_case, commit or omitted (closed comes from a win).")]


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
Source = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]  # as domain.external_ids checks it
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
