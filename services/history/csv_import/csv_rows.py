"""Rows of an export file, each with the line it starts on, and its cells read by role as typed values.

The standard library's `csv` module reads the files: exports are plain RFC 4180 CSV, and it handles quoted
commas and newlines, while a data-frame library (polars, pandas) would guess column types — turning
Salesforce ids into numbers or dates into its own — where every cell must stay text until its role says how
to read it. Files are read as UTF-8 with or without a byte-order mark (Excel writes one).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

from domain import money
from domain.errors import DomainError

if TYPE_CHECKING:
    from services.history.csv_import.mapping import FileSpec, Mapping

TRUE, FALSE = {"true", "1", "yes", "y", "t", "x"}, {"false", "0", "no", "n", "f", ""}
EPOCH_MS_DIGITS = 12  # an all-digit cell this long or longer is HubSpot's milliseconds since 1970 (≥ 2001-09)


class RowRefused(ValueError):
    """One row cannot be imported: which column (or "" for the whole row), and why."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}" if column else reason)
        self.column, self.reason = column, reason


class FileRefused(ValueError):
    """A whole file cannot be read (unreadable, or a column the mapping names is missing); nothing is written."""


@dataclass(frozen=True)
class Row:
    file: str
    line: int  # the line the record starts on (a quoted newline makes a record span lines)
    values: dict[str, str]
    problem: str = ""  # why the row cannot be read (its cells do not match the header), refused per row


@dataclass(frozen=True)
class Instant:
    """A cell's instant, and whether it was a bare date (then "that day", no time of its own)."""

    at: datetime
    date_only: bool


def read_rows(spec: FileSpec, required: tuple[str, ...]) -> tuple[list[str], list[Row]]:
    """The file's header and rows; FileRefused if it cannot be read or lacks a mapped or required column."""
    try:
        with spec.path.open(encoding="utf-8-sig", newline="") as source:
            reader = csv.reader(source)
            header = [name.strip() for name in next(reader, [])]
            _check_header(spec, header, required)
            rows, start = [], reader.line_num + 1
            for cells in reader:
                if any(cell.strip() for cell in cells):
                    rows.append(Row(spec.name, start, dict(zip(header, cells)), _ragged(header, cells)))
                start = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise FileRefused(f"{spec.path}: cannot be read as UTF-8 CSV ({error})") from None
    return header, rows


def _ragged(header: list[str], cells: list[str]) -> str:
    """A row whose cells are more or fewer than the header's columns: a cut-off export or an unquoted comma
    ("Acme, Inc") would shift or blank every later cell, so it is refused rather than read."""
    if len(cells) == len(header):
        return ""
    return f"has {len(cells)} cells, the header {len(header)} (an unquoted comma, or a cut-off line?)"


def _check_header(spec: FileSpec, header: list[str], required: tuple[str, ...]) -> None:
    if not header:
        raise FileRefused(f"{spec.path}: the file is empty (no header line)")
    for role in required:
        if role not in spec.columns:
            raise FileRefused(f"{spec.path}: the mapping names no column for {role!r} ([files.columns] {role} = ...)")
    missing = [f"{column!r} ({role})" for role, column in spec.columns.items() if column not in header]
    if spec.shape != "stage_history":  # a history's properties are its details file's columns
        missing += [f"{column!r} (property {name})" for column, name in spec.properties.items() if column not in header]
    if missing:
        raise FileRefused(f"{spec.path}, line 1: missing required column {', '.join(missing)}; "
                          f"the file has: {', '.join(header)}")


class Cells:
    """A row's cells by role, read as the mapping says (time zone, date formats, default currency)."""

    def __init__(self, mapping: Mapping, spec: FileSpec, row: Row) -> None:
        self.mapping, self.spec, self.row = mapping, spec, row

    def column(self, role: str) -> str:
        return self.spec.columns.get(role, role)

    def text(self, role: str) -> str:
        """The stripped cell of `role`; "" if empty or the mapping names no column for it."""
        column = self.spec.columns.get(role)
        return (self.row.values.get(column) or "").strip() if column else ""

    def properties(self, columns: dict[str, str] | None = None) -> dict[str, str]:
        """The row's named properties (`[files.properties]`: column → property name; or `columns`), those
        with a value: an empty cell says nothing about a property, it does not remove one."""
        mapped = self.spec.properties if columns is None else columns
        return {name: value for column, name in mapped.items() if (value := (self.row.values.get(column) or "").strip())}

    def required(self, role: str) -> str:
        value = self.text(role)
        if not value:
            raise RowRefused(self.column(role), "is empty")
        return value

    def instant(self, role: str) -> Instant | None:
        text = self.text(role)
        return None if not text else parse_instant(self.mapping, text, self.column(role))

    def required_instant(self, role: str) -> Instant:
        return parse_instant(self.mapping, self.required(role), self.column(role))

    def day(self, role: str) -> date | None:
        found = self.instant(role)
        return None if found is None else found.at.astimezone(self.mapping.timezone).date()

    def amount(self, role: str) -> Decimal:
        """An amount (empty: 0); thousands separators are allowed."""
        text = self.text(role).replace(",", "").replace(" ", "")
        try:
            return money.amount(text or "0")
        except DomainError as error:
            raise RowRefused(self.column(role), f"bad amount: {error}") from None

    def currency(self, role: str = "currency") -> str:
        text = self.text(role).upper()
        try:
            return money.currency(text or self.mapping.currency)
        except DomainError as error:
            raise RowRefused(self.column(role), f"unknown currency: {error}") from None

    def flag(self, role: str) -> bool:
        text = self.text(role).casefold()
        if text in TRUE or text in FALSE:
            return text in TRUE
        raise RowRefused(self.column(role), f"{text!r} is not true or false")

    def person(self) -> str:
        """A name from `name`, else `first_name` + `last_name`."""
        return self.text("name") or " ".join(p for p in (self.text("first_name"), self.text("last_name")) if p)


def parse_instant(mapping: Mapping, text: str, column: str) -> Instant:
    """ISO 8601 first, then each of the mapping's `date_formats`, then milliseconds since 1970; a value without
    a zone is in the mapping's time zone."""
    parsed = _parse(text, mapping.date_formats)
    if parsed is None:
        formats = ", ".join(mapping.date_formats) or "none given"
        raise RowRefused(column, f"bad date {text!r}: expected ISO 8601 (2024-03-05 or 2024-03-05T14:30:00Z) "
                                 f"or one of the mapping's date_formats ({formats})")
    value, date_only = parsed
    if value.tzinfo is None:
        value = value.replace(tzinfo=mapping.timezone)
    if not 1900 <= value.year < 3000:
        raise RowRefused(column, f"bad date {text!r}: outside 1900-2999")
    return Instant(value, date_only)


def _parse(text: str, formats: tuple[str, ...]) -> tuple[datetime, bool] | None:
    try:
        return datetime.fromisoformat(text), len(text) <= len("2024-03-05")
    except ValueError:
        pass
    for form in formats:
        try:
            return datetime.strptime(text, form), not any(c in form for c in "HIMSf")
        except ValueError:
            continue
    if text.isdigit() and len(text) >= EPOCH_MS_DIGITS:
        return datetime.fromtimestamp(int(text) / 1000, timezone.utc), False
    return None

