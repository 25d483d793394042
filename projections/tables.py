"""Portable table definitions (SQLite and PostgreSQL) and the time/money encodings read models use.

Instants are stored as BIGINT microseconds since the epoch (UTC) and money as BIGINT minor units
(cents), so comparisons and sums are exact and identical on both databases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from operator import itemgetter
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import orjson

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def micros(instant: datetime) -> int:
    delta = instant - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def days_sql(iso_date: str) -> str:
    """SQL for the day number (since 1970-01-01) of an SQL expression holding an ISO date `YYYY-MM-DD…`."""
    return f"date_diff('day', DATE '1970-01-01', CAST(substr({iso_date}, 1, 10) AS DATE))"


def micros_sql(iso: str) -> str:
    """SQL for `micros` of an SQL expression holding an instant as the flat log writes it (ISO 8601 UTC,
    `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`, services/bulk/log_reader.py): read by position, so that it is exact
    and the same on every engine (DuckDB, Spark: no session time zone involved)."""
    return (f"{days_sql(iso)} * 86400000000 + CAST(substr({iso}, 12, 2) AS BIGINT) * 3600000000"
            f" + CAST(substr({iso}, 15, 2) AS BIGINT) * 60000000 + CAST(substr({iso}, 18, 2) AS BIGINT) * 1000000"
            f" + CASE WHEN length({iso}) > 25 THEN CAST(substr({iso}, 21, 6) AS BIGINT) ELSE 0 END")


def cents_sql(amount: str) -> str:
    """SQL for `cents` of an SQL expression holding an amount's decimal text: × 100, rounded half to even
    (amounts may carry more than two decimals), exact on every engine (DECIMAL, no float)."""
    scaled = f"(CAST({amount} AS DECIMAL(38, 12)) * 100)"
    return (f"CAST(floor({scaled}) + CASE WHEN {scaled} - floor({scaled}) > 0.5 THEN 1 "
            f"WHEN {scaled} - floor({scaled}) < 0.5 THEN 0 WHEN CAST(floor({scaled}) AS BIGINT) % 2 = 0 THEN 0 "
            "ELSE 1 END AS BIGINT)")


SPAN_UNIT = 60_000_000  # µs: an interval of up to a minute is in span class 0, up to 2 minutes in 1, …
OPEN_SPAN = 1_000  # the span class of an interval not ended (as far as its row knows)
MAX_SPAN = 34  # 2**34 minutes ≈ 32,000 years: every span of business time has a class up to it (and fits int64)
NOT_ENDED = 2**62  # an end far beyond any business time (µs)


def span_class(begins: int, ends: int | None) -> int:
    """The class of an interval `[begins, ends)` by its length: the smallest k with a length of at most
    SPAN_UNIT × 2**k (OPEN_SPAN while it has no end). "In force at T" then asks each class only for the
    intervals begun in the last SPAN_UNIT × 2**k before T — no earlier one of that class still lasts — so it
    reads about what it returns, not every interval ever begun (`in_force_at`)."""
    if ends is None or ends >= NOT_ENDED:
        return OPEN_SPAN
    return ((max(ends - begins, 1) - 1) // SPAN_UNIT).bit_length()


def top_span_sql(table: str, span: str = "span", within: str = "") -> str:
    """The largest finite span class of `table`'s rows (one probe of the span index): `in_force_at` asks only
    the classes up to it (36 ranges cost 18 ms of planning on PostgreSQL, a history's few a fraction)."""
    within = f"{within} AND " if within else ""
    return f"SELECT MAX({span}) FROM {table} WHERE {within}{span} < {OPEN_SPAN}"


def in_force_at(span: str, begins: str, t: int, within: str = "", top: int | None = MAX_SPAN) -> tuple[str, list[int]]:
    """SQL condition and parameters: the rows whose interval by (`span`, `begins`) may last at T, for an index
    on (…, span, begins) whose leading columns `within` fixes (repeated in each range, so that every planner
    reads each range from the index), for the classes up to `top` (`top_span_sql`: none above it has rows);
    the caller still checks the end itself (a row's class may be that of a longer interval, never of a
    shorter one)."""
    within = f"{within} AND " if within else ""
    classes = range(min(MAX_SPAN, -1 if top is None else top) + 1)  # top None: no finite span yet
    ranges = [f"({within}{span} = ? AND {begins} > ? AND {begins} <= ?)"] * len(classes)
    params: list[int] = []
    for k in classes:
        params += [k, max(t - (SPAN_UNIT << k), -NOT_ENDED), t]
    return "(" + " OR ".join([*ranges, f"({within}{span} = ? AND {begins} <= ?)"]) + ")", [*params, OPEN_SPAN, t]


@lru_cache(maxsize=4096)
def month_of(day: int) -> int:
    """The day number (since 1970-01-01) of the first day of `day`'s month (a local day: of its calendar), as the
    funnel's and the segments' month tallies key their months."""
    first = (date(1970, 1, 1) + timedelta(days=day)).replace(day=1)
    return (first - date(1970, 1, 1)).days


@lru_cache(maxsize=4096)
def year_of(day: int) -> int:
    """The day number of the first day of `day`'s year (its calendar's), as the funnel's year sums key their years."""
    return (date(1970, 1, 1) + timedelta(days=day)).replace(month=1, day=1).toordinal() - date(1970, 1, 1).toordinal()


def from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, timezone.utc).replace(microsecond=value % 1_000_000)


def cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value(rounding=ROUND_HALF_EVEN))


def held_json(row: dict[str, Any], column: str) -> Any:
    """The JSON value of a `json_columns` column, parsed once and then held in the row (changes stick)."""
    value = row[column]
    if isinstance(value, str):
        value = row[column] = orjson.loads(value)
    return value


@dataclass(frozen=True)
class Table:
    """A read-model table: its columns (name, SQL type), primary key and extra indexes."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    json_columns: tuple[str, ...] = ()  # TEXT columns handlers may hold as JSON values; written as JSON text
    # The table's typed row, naming exactly its columns. A NamedTuple (fields = the columns, in order): rows
    # are of this type rather than dicts, written as they are, no conversion either way — for rows written
    # once. A TypedDict (keys = the columns): rows stay dicts, typed — for rows a handler changes in place on
    # every event (the funnel's item), which a frozen row would have to copy (≈ 1.7 µs a row, ≈ 10% of the
    # funnel's handling time on a 61k-event demo log).
    row_type: type[Any] | None = None
    # SQL condition on rows that no query reads and that the handlers leave depending on how their batches fell
    # (the segments' superseded intervals): a rebuild by another path (services/bulk) need not write them, and
    # the diffs of the two paths (`crm projections verify`, the tests) leave them out. "": none.
    ignored_rows: str = ""

    def __post_init__(self) -> None:
        if self.row_type is None:
            return
        fields = self.row_type._fields if self.tuple_rows else tuple(self.row_type.__annotations__)
        if fields != self.column_names:
            raise TypeError(f"{self.row_type.__name__}'s fields are not the columns of {self.name}, in order")
        if self.tuple_rows and self.json_columns:
            raise TypeError(f"{self.name}: JSON columns are held in dict rows, not in a NamedTuple")

    @cached_property
    def tuple_rows(self) -> bool:
        """Whether rows are NamedTuples of `row_type` (else dicts, typed by a TypedDict or not at all)."""
        return hasattr(self.row_type, "_fields")

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @cached_property
    def row_of(self) -> Callable[[Sequence[object]], Any]:
        """A fast function from values in column order (as fetched) to a row: of `row_type`, or a dict."""
        if self.tuple_rows:
            return self.row_type._make  # type: ignore[union-attr]
        names = self.column_names
        return lambda values: dict(zip(names, values))

    @cached_property
    def row_values(self) -> Callable[[Any], tuple[object, ...]]:
        """A fast function from a row to its values in column order."""
        if self.tuple_rows:
            return lambda row: row  # already them
        getter = itemgetter(*self.column_names)
        plain = getter if len(self.column_names) > 1 else lambda row: (getter(row),)
        if not self.json_columns:
            return plain
        positions = [self.column_names.index(name) for name in self.json_columns]

        def with_json(row: dict[str, object]) -> tuple[object, ...]:
            values = list(plain(row))
            for i in positions:
                if not isinstance(values[i], str):
                    values[i] = orjson.dumps(values[i]).decode()
            return tuple(values)
        return with_json

    def index_names(self) -> list[str]:
        return [f"{self.name}_{'_'.join(index)}" for index in self.indexes]

    def ddl(self) -> list[str]:
        columns = ", ".join(f"{name} {kind}" for name, kind in self.columns)
        statements = [f"CREATE TABLE IF NOT EXISTS {self.name} ({columns}, PRIMARY KEY ({', '.join(self.key)}))"]
        for name, index in zip(self.index_names(), self.indexes):
            statements.append(f"CREATE INDEX IF NOT EXISTS {name} ON {self.name} ({', '.join(index)})")
        return statements

    def upsert_sql(self) -> str:
        names = self.column_names
        return (f"INSERT INTO {self.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
                f"{self.on_conflict_sql()}")

    def on_conflict_sql(self) -> str:
        """The clause that makes an INSERT of whole rows replace those whose key is already there."""
        updates = ", ".join(f"{c} = excluded.{c}" for c in self.column_names if c not in self.key)
        return f"ON CONFLICT ({', '.join(self.key)}) " + (f"DO UPDATE SET {updates}" if updates else "DO NOTHING")

    @cached_property
    def key_of(self) -> Callable[[Any], tuple[object, ...]]:
        """A fast function from a row to its primary key tuple."""
        getter = itemgetter(*(map(self.column_names.index, self.key) if self.tuple_rows else self.key))
        return getter if len(self.key) > 1 else lambda row: (getter(row),)
