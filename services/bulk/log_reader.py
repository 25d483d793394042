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


def _plain_top(state: dict[str, Any]) -> dict[str, Any]:
    """`_plain` of a state's values, in place (most are scalars; a typed value is a 2-key dict)."""
    for key, value in state.items():
        kind = type(value)
        if kind is dict:
            typed = value.get("_type_")
            state[key] = _PLAIN[typed](value["_data_"]) if typed in _PLAIN and len(value) == 2 else _plain(value)
        elif kind is list:
            state[key] = _plain(value)
    return state


def _decoded(about: _Topic, stored: bytes | memoryview) -> tuple[bytes, str | None]:
    """The stored state as plain JSON (bytes) upcast to its class's version, and its `timestamp`."""
    state = _plain_top(orjson.loads(stored))
    stored_version = state.pop("class_version", 1)
    if stored_version < about.class_version:
        about.upcast(state, stored_version)
    return orjson.dumps(state), state.get("timestamp")


def plain_state(topic: str, stored: bytes | memoryview) -> tuple[str, str]:
    """The stored state as plain JSON text (upcast to its class's version) and its `timestamp` (ISO text)."""
    state, timestamp = _decoded(_topic(topic), stored)
    return state.decode(), timestamp or ""


_PARTITION_OF_HEX = {f"{byte:02x}": byte % PARTITIONS for byte in range(256)}  # the id's last byte → partition


def _batch(rows: Sequence[tuple[int, str, int, str, bytes]]) -> pa.RecordBatch:
    """One record batch of `LOG_SCHEMA` from (position, aggregate id text, version, topic, stored state) rows:
    the states decoded one by one (≈ 3 µs of orjson each), everything else by column."""
    positions, ids, versions, topics, stored = zip(*rows)
    about = {topic: _topic(topic) for topic in set(topics)}
    decoded = [_decoded(about[topic], state) for topic, state in zip(topics, stored)]
    codes = pa.array(topics, pa.string()).dictionary_encode()
    per_topic = [about[topic] for topic in codes.dictionary.to_pylist()]

    def by_topic(values: list[Any], kind: pa.DataType) -> pa.Array:
        return pc.take(pa.array(values, kind), codes.indices)
    reference = by_topic([a.reference for a in per_topic], pa.bool_())
    partitions = pc.if_else(reference, pa.scalar(-1, pa.int16()),
                            pa.array([_PARTITION_OF_HEX[i[-2:]] for i in ids], pa.int16()))
    instants = pc.cast(pa.array([stamp for _, stamp in decoded], pa.string()), pa.timestamp("us", tz="UTC"))
    states = pa.array([state for state, _ in decoded], pa.binary()).cast(pa.string())  # checks UTF-8, by column
    return pa.RecordBatch.from_arrays(
        [pa.array(positions, pa.int64()), partitions, pa.array(ids, pa.string()), pa.array(versions, pa.int64()),
         by_topic([a.kind for a in per_topic], pa.string()), by_topic([a.event for a in per_topic], pa.string()),
         instants, states], schema=LOG_SCHEMA)


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


def require_readable(database: Database) -> None:
    """Raise UnsupportedLog, with what to do instead, for a log this module cannot read."""
    if database.kind not in EVENTS_TABLES or (database.kind == "sqlite" and not database.sqlite_path):
        raise UnsupportedLog(f"the bulk path reads a PostgreSQL or SQLite log; {database.url} is kept in memory "
                             "(rebuild it with the handlers: `crm projections rebuild` without --bulk)")


@contextmanager
def read_log(database: Database, start: int = 0, topics: Sequence[str] = (), table: str | None = None,
             batch_rows: int = BATCH_ROWS) -> Iterator[LogRead]:
    """The log's events after position `start` (0: the whole log), of these `topics` only if any are named
    (`domain.deal:Deal.Opened`: what the folds read; the head is the whole log's), read once; the rows are
    read while the batches are consumed, inside this context (one snapshot)."""
    require_readable(database)
    table = table or EVENTS_TABLES[database.kind]
    if database.kind == "postgresql":
        with _postgres_read(database, start, _topic_filter(topics), table, batch_rows) as read:
            yield read
    else:
        with _sqlite_read(database.sqlite_path or "", start, _topic_filter(topics), table, batch_rows) as read:
            yield read


def _topic_filter(topics: Sequence[str]) -> str:
    """An SQL condition on `topic` (topics are module:qualname identifiers: no quote can be in one)."""
    if not topics:
        return ""
    if any("'" in topic for topic in topics):
        raise ValueError(f"not a topic: {topics}")
    return f" AND topic IN ({', '.join(repr(topic) for topic in sorted(set(topics)))})"


@contextmanager
def _postgres_read(database: Database, start: int, where: str, table: str, batch_rows: int) -> Iterator[LogRead]:
    import psycopg

    with psycopg.connect(database.url, connect_timeout=10) as connection:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # head and rows: one snapshot
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute(f"SELECT coalesce(max(notification_id), 0) FROM {table}")
            head = max(start, cursor.fetchone()[0])  # type: ignore[index]
            copy_sql = (f"COPY (SELECT notification_id, originator_id::text, originator_version, topic, state "
                        f"FROM {table} WHERE notification_id > {int(start)}{where} ORDER BY notification_id) "
                        "TO STDOUT (FORMAT BINARY)")

            def rows() -> Iterator[tuple[Any, ...]]:
                with cursor.copy(copy_sql) as copy:
                    copy.set_types(["int8", "text", "int8", "text", "bytea"])
                    yield from copy.rows()
            yield LogRead(head, _batches(rows(), batch_rows))


@contextmanager
def _sqlite_read(path: str, start: int, where: str, table: str, batch_rows: int) -> Iterator[LogRead]:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # DuckDB reads on its threads
    try:
        connection.execute("BEGIN")  # a read transaction: one snapshot (WAL)
        head = max(start, connection.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0])
        cursor = connection.execute(f"SELECT rowid, originator_id, originator_version, topic, state FROM {table} "
                                    f"WHERE rowid > ?{where} ORDER BY rowid", (start,))  # rowid: the notification id
        rows = ((n, str(_sqlite_uuid(i)), v, t, s) for n, i, v, t, s in cursor)
        yield LogRead(head, _batches(rows, batch_rows))
    finally:
        connection.close()


def _sqlite_uuid(stored: str) -> str:
    """The library's SQLite recorder keeps originator ids as text (canonical, 36 characters)."""
    return stored if len(stored) == 36 else _uuid_text(stored)
