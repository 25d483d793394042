"""The local day of an instant column in a time zone, as SQL: what `domain.periods.day_number` is in Python.

Why not the engines' own time zone functions: SQLite has none, and PostgreSQL's and DuckDB's (ICU) carry their
own copy of the zone database, whose version need not be Python's (`zoneinfo`/`tzdata`), so a day could
start an hour apart in the handlers and in SQL. Here the zone's offset changes over the range a query can
meet (`periods.offset_changes`, from `zoneinfo` itself) become a balanced CASE over literal instants: for
Asia/Shanghai ≈ 30 changes since 1900 (none since 1991), for America/New_York ≈ 210 until 2026 — a CASE
nested ≈ 8 deep, so each row takes ≈ 8 comparisons. For UTC the text is the plain division of before.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo

from domain.base import EARLIEST, LATEST
from domain.periods import is_utc, offset_changes
from projections.tables import micros

DAY_MICROS = 86_400_000_000
# Business time starts in 1900: shifted by that and one more day (no offset is a day), every local instant
# is ≥ 0, so integer division (truncating in SQLite and PostgreSQL) floors.
_SHIFT = -micros(EARLIEST) + DAY_MICROS
_FIRST_DAY = (EARLIEST.date() - date(1970, 1, 1)).days - 1


def offset_sql(column: str, zone: tzinfo, start: datetime = EARLIEST, end: datetime = LATEST) -> str:
    """SQL for `zone`'s UTC offset (µs) at the instant `column` (µs), exact for instants in [start, end)."""
    initial, changes = offset_changes(zone, start, end)
    return _balanced(column, _us(initial), [(micros(at), _us(offset)) for at, offset in changes])


def local_day_sql(column: str, zone: tzinfo, start: datetime = EARLIEST, end: datetime = LATEST) -> str:
    """SQL for the local day (days since 1970-01-01 of the date in `zone`) of the µs column `column`, for
    SQLite and PostgreSQL (integer division); exact for instants in [start, end)."""
    shifted = f"{column} + {_SHIFT}" if is_utc(zone) else f"{column} + {offset_sql(column, zone, start, end)} + {_SHIFT}"
    return f"(({shifted}) / {DAY_MICROS} + {_FIRST_DAY})"


def duckdb_local_date(column: str, zone: tzinfo, start: datetime = EARLIEST, end: datetime = LATEST) -> str:
    """DuckDB: the local wall time in `zone` of the µs column `column`, as a TIMESTAMP (for the bulk fold);
    exact for instants in [start, end)."""
    return f"make_timestamp({column} + {offset_sql(column, zone, start, end)})"


def _balanced(column: str, before: int, changes: list[tuple[int, int]]) -> str:
    """`before` until the first change, then each change's offset: a CASE split at the middle change."""
    if not changes:
        return str(before)
    middle = len(changes) // 2
    at, offset = changes[middle]
    return (f"CASE WHEN {column} < {at} THEN {_balanced(column, before, changes[:middle])} "
            f"ELSE {_balanced(column, offset, changes[middle + 1:])} END")


def _us(offset: timedelta) -> int:
    return offset // timedelta(microseconds=1)
