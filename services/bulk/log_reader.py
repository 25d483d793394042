"""The flat log: every stored event read once, fast, as rows of Arrow record batches (`LOG_SCHEMA`), for
set-based folds (DuckDB, Spark) and the Parquet archive.

Decoding a stored event into a domain object costs ≈ 46 µs (the library's mapper: JSON with an object hook,
topic resolution, the object built); a binary COPY and orjson ≈ 5 µs (issue 14's prototype on 301,776
events). So this reads the log's rows with `COPY (SELECT …) TO STDOUT (FORMAT BINARY)` on PostgreSQL (a
plain SELECT on SQLite, the embedded default: it holds small logs) and turns each stored state into plain
JSON text without building any domain object:

- the transcoder's typed values `{"_type_": "uuid_hex" | "datetime_iso" | "decimal_str" | "date_iso",
  "_data_": …}` become plain strings: a uuid in its canonical 36-character text (as `aggregate_id`, so a
  fold joins a deal's `customer_id` to the customer's rows as text), an instant in ISO 8601 UTC, a Decimal
  or a date as stored;
- an event stored under an older `class_version` is upcast by its class's own `upcast_vN_vN+1` static
  methods (they only add plain fields, e.g. `Deal.Lost`'s `competitor`), so a fold sees what a handler sees;
- personal fields stay sealed as stored (`pii:v1:…`): no key is read (as the handlers' rebuild).

The log has no compression and no cipher (the application configures neither: `CrmApplication`'s mapper
is `PersonalDataMapper` over the library's JSONTranscoder), so the stored state is the transcoder's JSON.

Columns (the contract, shared with the Parquet export): `position` the shard's notification id; `partition`
the home partition (`domain.partitions`; -1 for reference data); `aggregate_id`, `version`; `kind` and
`event` from the topic (`domain.deal:Deal.Lost` → `Deal`, `Lost`); `recorded_at` the event's own
`timestamp`; `state` the plain JSON. A read is one REPEATABLE READ snapshot, so its `head` (the position a
read model built from it has reached) and its rows agree.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from eventsourcing.utils import resolve_topic

from domain.partitions import PARTITIONS, is_reference
from services.settings import Database

LOG_SCHEMA = pa.schema([
    pa.field("position", pa.int64(), nullable=False),
    pa.field("partition", pa.int16(), nullable=False),
    pa.field("aggregate_id", pa.string(), nullable=False),
    pa.field("version", pa.int64(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("event", pa.string(), nullable=False),
    pa.field("recorded_at", pa.timestamp("us", tz="UTC")),
    pa.field("state", pa.string(), nullable=False),
])
"""One row per stored event (see the module's docstring): the contract of every set-based fold."""

EVENTS_TABLES = {"postgresql": "crm_events", "sqlite": "stored_events"}  # CrmApplication's log, as the library names it
BATCH_ROWS = 65_536  # rows per record batch: ≈ 30 MB of state text at ≈ 450 bytes an event, DuckDB's vector × 32


class UnsupportedLog(RuntimeError):
    """A log the bulk reader cannot read (in memory, or sharded): use the handlers' rebuild."""


@dataclass(frozen=True)
class _Topic:
    """What a topic tells about its events, worked out once per topic."""

    kind: str
    event: str
    reference: bool
    class_version: int
    upcast: Callable[[dict[str, Any], int], None]


def _no_upcast(state: dict[str, Any], stored_version: int) -> None:
    """Events of a class without versions (or that cannot be resolved any more): taken as stored."""


@lru_cache(maxsize=1024)
def _topic(topic: str) -> _Topic:
    qualname = topic.rpartition(":")[2]
    kind, _, event = qualname.partition(".")
    try:
        cls = resolve_topic(topic)
    except Exception:  # noqa: BLE001 - a class gone from the code: its rows still go out, as stored
        return _Topic(kind, event, is_reference(kind), 1, _no_upcast)
    version = getattr(cls, "class_version", 1)

    def upcast(state: dict[str, Any], stored: int) -> None:
        while stored < version:  # the mapper's loop (eventsourcing.persistence.Mapper.to_domain_event)
            getattr(cls, f"upcast_v{stored}_v{stored + 1}")(state)
            stored += 1
    return _Topic(kind, event, is_reference(kind), version, upcast if version > 1 else _no_upcast)


def _uuid_text(data: str) -> str:
    return f"{data[:8]}-{data[8:12]}-{data[12:16]}-{data[16:20]}-{data[20:]}"


def _utc_text(data: str) -> str:
    """ISO 8601 in UTC: as stored when it already is (every instant the application records), else converted."""
    if data.endswith("+00:00"):
        return data
    return datetime.fromisoformat(data).astimezone(timezone.utc).isoformat()


_PLAIN: dict[str, Callable[[str], str]] = {"uuid_hex": _uuid_text, "datetime_iso": _utc_text,
                                            "decimal_str": str, "date_iso": str}


def _plain(value: Any) -> Any:
    """A decoded JSON value with the transcoder's typed values turned into plain strings."""
    kind = type(value)
    if kind is dict:
        typed = value.get("_type_")
        if typed is not None and len(value) == 2 and typed in _PLAIN:
            return _PLAIN[typed](value["_data_"])
        return {key: _plain(item) for key, item in value.items()}
    if kind is list:
        return [_plain(item) for item in value]
    return value


def plain_state(topic: str, stored: bytes | memoryview) -> tuple[str, str]:
    """The stored state as plain JSON text (upcast to its class's version) and its `timestamp` (ISO text)."""
    state = {key: _plain(value) if type(value) in (dict, list) else value
             for key, value in orjson.loads(stored).items()}
    about = _topic(topic)
    stored_version = state.pop("class_version", 1)
    if stored_version < about.class_version:
        about.upcast(state, stored_version)
    return orjson.dumps(state).decode(), state.get("timestamp", "")


def _batch(rows: Sequence[tuple[int, str, int, str, bytes]]) -> pa.RecordBatch:
    """One record batch of `LOG_SCHEMA` from (position, aggregate id text, version, topic, stored state) rows."""
    positions, partitions, ids, versions, kinds, events, recorded, states = ([] for _ in range(8))
    for position, aggregate_id, version, topic, stored in rows:
        about = _topic(topic)
        state, timestamp = plain_state(topic, stored)
        positions.append(position)
        partitions.append(-1 if about.reference else int(aggregate_id[-2:], 16) % PARTITIONS)
        ids.append(aggregate_id)
        versions.append(version)
        kinds.append(about.kind)
        events.append(about.event)
        recorded.append(timestamp or None)
        states.append(state)
    instants = pc.cast(pa.array(recorded, pa.string()), pa.timestamp("us", tz="UTC"))  # ISO 8601, vectorised
    return pa.RecordBatch.from_arrays(
        [pa.array(positions, pa.int64()), pa.array(partitions, pa.int16()), pa.array(ids, pa.string()),
         pa.array(versions, pa.int64()), pa.array(kinds, pa.string()), pa.array(events, pa.string()), instants,
         pa.array(states, pa.string())], schema=LOG_SCHEMA)


def _batches(rows: Iterator[tuple[Any, ...]], batch_rows: int) -> Iterator[pa.RecordBatch]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == batch_rows:
            yield _batch(chunk)
            chunk = []
    if chunk:
        yield _batch(chunk)


@dataclass
class LogRead:
    """One read of the log: its head (the highest position in the snapshot; `start` when none is past it)
    and its rows from `start` on, in position order, as record batches (an iterator: read them once)."""

    head: int
    batches: Iterator[pa.RecordBatch]

    def reader(self) -> pa.RecordBatchReader:
        """The batches as a stream DuckDB (or pyarrow) consumes without holding the whole log."""
        return pa.RecordBatchReader.from_batches(LOG_SCHEMA, self.batches)

    def table(self) -> pa.Table:
        return pa.Table.from_batches(list(self.batches), LOG_SCHEMA)


@contextmanager
def read_log(database: Database, start: int = 0, table: str | None = None,
             batch_rows: int = BATCH_ROWS) -> Iterator[LogRead]:
    """The log's events after position `start` (0: the whole log), read once; the rows are read while the
    batches are consumed, inside this context (one snapshot)."""
    table = table or EVENTS_TABLES.get(database.kind, "")
    if database.kind == "postgresql":
        with _postgres_read(database, start, table, batch_rows) as read:
            yield read
    elif database.kind == "sqlite" and database.sqlite_path:
        with _sqlite_read(database.sqlite_path, start, table, batch_rows) as read:
            yield read
    else:
        raise UnsupportedLog(f"the bulk path reads a PostgreSQL or SQLite log; {database.url} is kept in memory "
                             "(rebuild it with the handlers: `crm projections rebuild` without --bulk)")


@contextmanager
def _postgres_read(database: Database, start: int, table: str, batch_rows: int) -> Iterator[LogRead]:
    import psycopg

    with psycopg.connect(database.url, connect_timeout=10) as connection:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # head and rows: one snapshot
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute(f"SELECT coalesce(max(notification_id), 0) FROM {table}")
            head = max(start, cursor.fetchone()[0])  # type: ignore[index]
            copy_sql = (f"COPY (SELECT notification_id, originator_id::text, originator_version, topic, state "
                        f"FROM {table} WHERE notification_id > {int(start)} ORDER BY notification_id) "
                        "TO STDOUT (FORMAT BINARY)")

            def rows() -> Iterator[tuple[Any, ...]]:
                with cursor.copy(copy_sql) as copy:
                    copy.set_types(["int8", "text", "int8", "text", "bytea"])
                    yield from copy.rows()
            yield LogRead(head, _batches(rows(), batch_rows))


@contextmanager
def _sqlite_read(path: str, start: int, table: str, batch_rows: int) -> Iterator[LogRead]:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # DuckDB reads on its threads
    try:
        connection.execute("BEGIN")  # a read transaction: one snapshot (WAL)
        head = max(start, connection.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0])
        cursor = connection.execute(f"SELECT rowid, originator_id, originator_version, topic, state FROM {table} "
                                    "WHERE rowid > ? ORDER BY rowid", (start,))  # rowid: the notification id
        rows = ((n, str(_sqlite_uuid(i)), v, t, s) for n, i, v, t, s in cursor)
        yield LogRead(head, _batches(rows, batch_rows))
    finally:
        connection.close()


def _sqlite_uuid(stored: str) -> str:
    """The library's SQLite recorder keeps originator ids as text (canonical, 36 characters)."""
    return stored if len(stored) == 36 else _uuid_text(stored)
