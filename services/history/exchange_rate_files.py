"""Reading a file of exchange rates into `RecordExchangeRate` commands, and recording them.

Two shapes, told apart by the header (case and spaces ignored), both CSV in UTF-8 (a BOM is skipped):

- **long**, one rate a row: `date,currency,rate[,source]` — the shape of central banks' series downloads
  (one currency's daily series, or several stacked). `rate` is units of the quote currency (`--quote`,
  default the reporting currency) one unit of `currency` is worth: "USD,7.1234" into CNY is how the
  People's Bank of China states its central parity (1 USD = 7.1234 CNY).
- **wide**, one date a row and one column per currency: `Date,USD,JPY,…` — the shape of the ECB's
  eurofxref-hist.csv. Empty and "N/A" cells (a currency not quoted that day) are skipped, and so are the
  columns of currencies ISO 4217 no longer lists (the ECB's file keeps BGN, CYP, LTL, … for the years they
  were quoted): a file of thirty currencies is not refused for one that was withdrawn. `skipped_columns`
  names them.

`--inverse` reads each figure as units of the currency per one unit of the quote (the ECB's "1 EUR =
1.0812 USD"), inverted here to twelve decimal places (`domain.exchange_rates.RATE_PLACES`: ten significant
digits for 1 EUR = 25,000 VND, more than any source publishes).

Every row is checked before anything is written (the domain's own checks: currencies, a positive rate,
business dates), and a refused row is named by line and column. Two different figures for one currency and
date in one file are refused, naming both lines: a file states each rate once, and which figure a later line
"corrects" is the user's call, not the reader's (the same figure twice is read once). All rates of a file are
then recorded in one transaction (`CrmApplication.record_exchange_rates`): all or none, and a second import of
the same file writes nothing (a rate already equal in the log is "unchanged").
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from domain import money
from domain.base import Meta
from domain.errors import DomainError
from domain.exchange_rates import RATE_PLACES, require_pair, require_rate, require_source
from services.application import CrmApplication
from services.commands import RecordExchangeRate

_MISSING = frozenset({"", "N/A", "NA", "-", "ND"})
_PLACES = Decimal(1).scaleb(-RATE_PLACES)


class RateFileError(ValueError):
    """A file of rates that cannot be read, or a row refused (by line and column)."""


@dataclass
class RateFileReport:
    """What reading (and recording) a file found: its rates by outcome, currencies and date range."""

    rates: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    currencies: Counter[str] = field(default_factory=Counter)
    first: date | None = None
    last: date | None = None

    def add(self, command: RecordExchangeRate) -> None:
        self.rates += 1
        self.currencies[command.currency] += 1
        self.first = min(self.first or command.valid_from, command.valid_from)
        self.last = max(self.last or command.valid_from, command.valid_from)

    def to_dict(self) -> dict[str, object]:
        return {"rates": self.rates, "outcomes": dict(self.outcomes), "currencies": dict(self.currencies),
                "first": self.first.isoformat() if self.first else None,
                "last": self.last.isoformat() if self.last else None}


def skipped_columns(text: str) -> list[str]:
    """The columns of a wide file that `read_rates` skips: currencies that are not (or no longer) ISO 4217's."""
    header = next(csv.reader(io.StringIO(text.lstrip("\ufeff"))), [])
    if not header or header[0].strip().lower() != "date" or "currency" in {h.strip().lower() for h in header}:
        return []
    return [column.strip() for column in header[1:] if column.strip() and not _is_currency(column.strip())]


def _is_currency(code: str) -> bool:
    try:
        money.currency(code)
    except DomainError:
        return False
    return True


def read_rates(text: str, quote: str, source: str, inverse: bool = False) -> list[RecordExchangeRate]:
    """The commands a file's rows ask for, every row checked; RateFileError names the first bad one."""
    rows = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [column.strip() for column in next(rows, [])]
    names = [column.lower() for column in header]
    if {"date", "currency", "rate"} <= set(names):
        cells = _long(rows, names, source)
    elif names and names[0] == "date" and len(names) > 1:
        cells = _wide(rows, header, source)
    else:
        raise RateFileError("line 1: the header must name date, currency and rate (one rate a row) or Date "
                            "then one column per currency (as the ECB's eurofxref-hist.csv)")
    return _once_each([(line, _command(line, column, day, currency, rate, quote, row_source, inverse))
                       for line, column, day, currency, rate, row_source in cells])


def _once_each(commands: list[tuple[int, RecordExchangeRate]]) -> list[RecordExchangeRate]:
    """Each (currency, date)'s command once; two different figures for one are refused, naming both lines."""
    first: dict[tuple[str, date], tuple[int, RecordExchangeRate]] = {}
    for line, command in commands:
        key = (command.currency, command.valid_from)
        if key not in first:
            first[key] = line, command
            continue
        earlier_line, earlier = first[key]
        if require_rate(earlier.rate) != require_rate(command.rate):
            raise RateFileError(f"line {line}: {command.currency} on {command.valid_from} is {command.rate} here "
                                f"but {earlier.rate} on line {earlier_line}; a file states each rate once")
    return [command for _, command in first.values()]


Cell = tuple[int, str, str, str, str, str]  # line, column of the rate, date, currency, rate text, source


def _long(rows: Iterator[list[str]], names: list[str], source: str) -> Iterator[Cell]:
    at = {name: names.index(name) for name in ("date", "currency", "rate")}
    source_at = names.index("source") if "source" in names else None
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(names):
            raise RateFileError(f"line {line}: {len(row)} columns, the header has {len(names)}")
        row_source = row[source_at].strip() if source_at is not None and row[source_at].strip() else source
        yield line, "rate", row[at["date"]], row[at["currency"]].strip(), row[at["rate"]], row_source


def _wide(rows: Iterator[list[str]], header: list[str], source: str) -> Iterator[Cell]:
    kept = [column if _is_currency(column) else "" for column in header[1:]]
    for line, row in enumerate(rows, start=2):
        for column, cell in zip(kept, row[1:]):
            if column and cell.strip().upper() not in _MISSING:
                yield line, column, row[0], column, cell, source


def _command(line: int, column: str, day: str, currency: str, rate: str, quote: str, source: str,
             inverse: bool) -> RecordExchangeRate:
    where = f"line {line}, column {column!r}"
    try:
        valid_from = date.fromisoformat(day.strip())
    except ValueError:
        raise RateFileError(f"line {line}, column 'date': {day!r} is not a date like 2026-03-02") from None
    try:
        require_pair(currency, quote)
        figure = require_rate(_inverted(rate.strip()) if inverse else rate.strip())
        return RecordExchangeRate(currency, str(figure), valid_from, source=require_source(source), quote=quote)
    except DomainError as error:
        raise RateFileError(f"{where}: {error}") from None


def _inverted(text: str) -> str:
    try:
        figure = Decimal(text)
    except InvalidOperation:
        return text  # require_rate says why
    if not figure.is_finite() or figure <= 0:
        return text
    return format((1 / figure).quantize(_PLACES, rounding=ROUND_HALF_EVEN).normalize(), "f")


def record_rates(crm: CrmApplication, commands: list[RecordExchangeRate], meta: Meta, dry_run: bool = False) -> RateFileReport:
    """Record the rates in one transaction (unless `dry_run`), counting outcomes: recorded, corrected, unchanged."""
    report = RateFileReport()
    for command in commands:
        report.add(command)
    if not dry_run:
        report.outcomes.update(crm.record_exchange_rates(commands, meta))
    return report
