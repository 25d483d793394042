"""Reading export files: a byte-order mark, Chinese text, quoted newlines, empty cells, blank lines; and each
cell by its role: instants in the mapping's zone and formats, amounts, currencies, flags."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.history.csv_import.csv_rows import Cells, FileRefused, Row, RowRefused, parse_instant, read_rows
from services.history.csv_import.mapping import FileSpec, load_mapping
from tests.unit.services.history.csv_import.conftest import FIXTURES


def _spec(path: Path, **columns: str) -> FileSpec:
    return FileSpec(path, "accounts", columns)


def test_a_bom_quoted_newlines_chinese_text_and_each_rows_first_line() -> None:
    header, rows = read_rows(_spec(FIXTURES / "salesforce" / "Account.csv", id="Id"), ("id",))
    assert header[0] == "Id"  # not "\ufeffId"
    assert [row.line for row in rows] == [2, 4, 5]  # the first record spans lines 2–3
    assert rows[0].values["Description"] == "Makes anvils, rockets\nand other things"
    assert rows[1].values["Name"] == "上海星辰科技有限公司"
    assert rows[2].values["Industry"] == ""


def test_blank_lines_are_skipped_and_line_numbers_stay_the_files(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("Id,Name\n\n1,One\n,\n2,Two\n", encoding="utf-8")
    _, rows = read_rows(_spec(tmp_path / "a.csv", id="Id"), ("id",))
    assert [(row.line, row.values["Id"]) for row in rows] == [(3, "1"), (5, "2")]


@pytest.mark.parametrize(("text", "message"), [
    ("", "the file is empty"),
    ("Key,Name\n1,x\n", "line 1: missing required column 'Id' (id)"),
])
def test_an_empty_file_or_a_missing_column_refuses_the_file(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "a.csv").write_text(text, encoding="utf-8")
    with pytest.raises(FileRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_rows(_spec(tmp_path / "a.csv", id="Id"), ("id",))


def test_a_required_role_the_mapping_does_not_name_refuses_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("Id\n1\n", encoding="utf-8")
    with pytest.raises(FileRefused, match="names no column for 'created'"):
        read_rows(_spec(tmp_path / "a.csv", id="Id"), ("id", "created"))


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes("Id,Name\n1,Café\n".encode("latin-1"))
    with pytest.raises(FileRefused, match="cannot be read as UTF-8 CSV"):
        read_rows(_spec(tmp_path / "a.csv", id="Id"), ("id",))


@pytest.fixture
def mapping():
    return load_mapping(FIXTURES / "salesforce" / "mapping.toml")  # America/New_York; US formats


@pytest.mark.parametrize(("text", "expected", "date_only"), [
    ("2024-01-15T09:30:00.000Z", datetime(2024, 1, 15, 9, 30, tzinfo=timezone.utc), False),
    ("2024-01-15T09:30:00+08:00", datetime(2024, 1, 15, 1, 30, tzinfo=timezone.utc), False),
    ("2024-01-15 09:30", datetime(2024, 1, 15, 14, 30, tzinfo=timezone.utc), False),  # New York, winter
    ("2024-07-15", datetime(2024, 7, 15, 4, tzinfo=timezone.utc), True),  # New York, summer
    ("01/15/2024 2:05 PM", datetime(2024, 1, 15, 19, 5, tzinfo=timezone.utc), False),
    ("01/15/2024", datetime(2024, 1, 15, 5, tzinfo=timezone.utc), True),
    ("1705312800000", datetime(2024, 1, 15, 10, tzinfo=timezone.utc), False),
])
def test_instants_in_iso_the_mappings_formats_or_epoch_milliseconds(mapping, text, expected, date_only) -> None:
    parsed = parse_instant(mapping, text, "CreatedDate")
    assert (parsed.at, parsed.date_only) == (expected, date_only)
    assert parsed.at.tzinfo is not None


@pytest.mark.parametrize("text", ["15/01/2024", "2024-13-01", "yesterday", "0224-01-01", "12345"])
def test_a_bad_date_is_refused_naming_the_column_and_the_formats(mapping, text) -> None:
    with pytest.raises(RowRefused) as refused:
        parse_instant(mapping, text, "CreatedDate")
    assert refused.value.column == "CreatedDate" and f"bad date {text!r}" in refused.value.reason


def _cells(mapping, **values: str) -> Cells:
    spec = FileSpec(Path("x.csv"), "opportunities", {k: k.title() for k in values})
    return Cells(mapping, spec, Row("x.csv", 2, {k.title(): v for k, v in values.items()}))


def test_amounts_currencies_and_flags(mapping) -> None:
    cells = _cells(mapping, amount="12,500.50", currency="eur", closed="TRUE", won="0")
    assert cells.amount("amount") == Decimal("12500.50")
    assert cells.currency() == "EUR"
    assert (cells.flag("closed"), cells.flag("won")) == (True, False)
    empty = _cells(mapping, amount="", currency="")
    assert (empty.amount("amount"), empty.currency()) == (Decimal(0), "USD")


@pytest.mark.parametrize(("values", "read", "message"), [
    ({"amount": "12.5.0"}, lambda c: c.amount("amount"), "bad amount"),
    ({"amount": "1e20"}, lambda c: c.amount("amount"), "bad amount"),
    ({"currency": "DOLLARS"}, lambda c: c.currency(), "unknown currency"),
    ({"currency": "XAU"}, lambda c: c.currency(), "unknown currency"),
    ({"closed": "maybe"}, lambda c: c.flag("closed"), "'maybe' is not true or false"),
    ({"name": " "}, lambda c: c.required("name"), "is empty"),
])
def test_bad_cells_are_refused_naming_their_column(mapping, values, read, message) -> None:
    with pytest.raises(RowRefused) as refused:
        read(_cells(mapping, **values))
    assert refused.value.column == next(iter(values)).title() and message in refused.value.reason


def test_a_time_zone_is_kept_per_mapping() -> None:
    assert load_mapping(FIXTURES / "hubspot" / "mapping.toml").timezone == ZoneInfo("Europe/Berlin")
