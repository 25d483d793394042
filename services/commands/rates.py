"""The command on exchange rates: record a pair's rate for a date (a new one, a correction, or the same again)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field, StringConstraints

from services.commands.command import Command
from services.commands.field_types import Currency, Day, NO_NUL

Rate = Annotated[
    Annotated[str, StringConstraints(pattern=r"^[0-9]{1,10}(\.[0-9]{1,12})?$")],
    Field(description='Units of the quote currency one unit of `currency` is worth, as a decimal string '
                      '("7.1234"); never a float.'),
]
Source = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]


@dataclass(frozen=True, slots=True)
class RecordExchangeRate(Command):
    """`quote` defaults to the installation's reporting currency (CRM_REPORTING_CURRENCY)."""

    currency: Currency
    rate: Rate
    valid_from: Day
    source: Source = field(default="manual", kw_only=True)
    quote: Currency | None = field(default=None, kw_only=True)
