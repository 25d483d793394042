"""`crm import`: history from JSON Lines into the event log, checked whole before anything is written.

The format is what `services.history_export` writes, one event per line in log order:
`{"type": "crm.Deal.StageChanged", "subject": "<aggregate uuid>", "version": 3, "data": {...}}`,
`data` holding the event's own fields as `gateways.kafka.cloudevents.event_data` gives them. Blank
lines are skipped. Events keep their business time (`occurred_at`); `timestamp` is when they are imported.

Two streaming passes over the file keep memory flat and make a refused file write nothing:

1. check: every line is parsed into its domain event (the class named by `type`, fields converted with
   the class's type hints) and each aggregate's versions must run on 1, 2, 3… from what the log already
   holds (the only state kept is a dict aggregate → last version). The first bad line refuses the file.
2. write: the lines are parsed again and written in batches, each batch one transaction, through the
   application's mapper (which seals personal data, so the batch's data subjects get their keys first,
   as `CrmApplication.save_new` does). On PostgreSQL a batch is one binary `COPY` under the recorder's
   own table lock, so its notification ids are one uninterrupted run: the log stays gap-free and in file
   order. Elsewhere the recorder's `insert_events` writes each batch.

Parsing twice costs less than spooling mapped events to disk and reading them back (pickling ids and
times is slower than parsing them). Another writer appending to an aggregate of the file between the
passes makes that batch fail (primary key); the batches before it stay written, as any committed
transaction does.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from psycopg import sql

from domain.base import CrmAggregate
from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.pipeline import Pipeline
from domain.ticket import Ticket
from gateways.kafka.cloudevents import ENVELOPE_FIELDS, event_type
from services.application import CrmApplication
from services.personal_data import subjects_of

AGGREGATES = (Customer, Lead, Deal, Campaign, Ticket, Pipeline)
DEFAULT_BATCH = 5000
PROGRESS_EVERY = 5000  # lines between progress reports while checking
LINE_KEYS = {"type", "subject", "version", "data"}

Progress = Callable[[str, int, int], None]  # phase ("checking" in bytes, "writing" in events), done, total


class ImportRefused(ValueError):
    """The file cannot be imported as it is; nothing was written."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line


# --- lines → domain events --------------------------------------------------------------------------


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def _parsed(parse: Callable[[str], Any], what: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        try:
            return parse(_text(value))
        except (ValueError, InvalidOperation):
            raise ValueError(f"{value!r} is not {what}") from None
    return convert


def _instant(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return parsed


def _exactly(kind: type) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if type(value) is not kind:
            raise ValueError(f"{value!r} is not of type {kind.__name__}")
        return value
    return convert


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    str: _text,
    int: _exactly(int),
    bool: _exactly(bool),
    datetime: _parsed(_instant, "an ISO 8601 time with a zone"),
    date: _parsed(date.fromisoformat, "an ISO 8601 date"),
    Decimal: _parsed(Decimal, "a decimal number"),
    UUID: _parsed(UUID, "a UUID"),
}


def converter(hint: Any) -> Callable[[Any], Any]:
    """How to turn the JSON value of a field with type hint `hint` into its Python value."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _optional(converter(inner))
    container = typing.get_origin(hint) or hint
    if container in (list, dict):
        return _exactly(container)
    return CONVERTERS[hint]


@dataclass(frozen=True)
class EventSchema:
    """How to build one event class from a line's `data`."""

    cls: type
    envelope: dict[str, str]  # fields not in `data`: a created event's aggregate topic
    fields: dict[str, Callable[[Any], Any]]

    @classmethod
    def of(cls, aggregate: type, event_class: type) -> EventSchema:
        hints = typing.get_type_hints(event_class)
        names = [f.name for f in dataclasses.fields(event_class) if f.name not in ENVELOPE_FIELDS]
        created = issubclass(event_class, CrmAggregate.Created)
        return cls(event_class, {"originator_topic": get_topic(aggregate)} if created else {},
                   {name: converter(hints[name]) for name in names})

    def build(self, subject: UUID, version: int, data: dict[str, Any], recorded: datetime) -> Any:
        if data.keys() != self.fields.keys():
            missing, unknown = self.fields.keys() - data.keys(), data.keys() - self.fields.keys()
            raise ValueError("data " + "; ".join(
                f"{what} {', '.join(sorted(names))}" for what, names in (("lacks", missing), ("has unknown", unknown))
                if names
            ))
        values = {}
        for name, convert in self.fields.items():
            try:
                values[name] = convert(data[name])
            except ValueError as error:
                raise ValueError(f"field {name!r}: {error}") from None
        return self.cls(originator_id=subject, originator_version=version, timestamp=recorded,
                        **self.envelope, **values)


def event_classes() -> dict[str, tuple[type, type]]:
    """Every event of the catalogue by its type name: `crm.Deal.StageChanged` → (Deal, Deal.StageChanged)."""
    return {
        f"crm.{value.__qualname__}": (aggregate, value)
        for aggregate in AGGREGATES for name, value in vars(aggregate).items()
        if isinstance(value, type) and issubclass(value, aggregate.Event) and name not in ("Event", "Created")
    }


SCHEMAS = {name: EventSchema.of(aggregate, cls) for name, (aggregate, cls) in event_classes().items()}


def parse_event(line: bytes, recorded: datetime) -> Any:
    """The domain event one line describes, recorded at `recorded`; ValueError says what is wrong."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error})") from None
    if not isinstance(record, dict) or record.keys() != LINE_KEYS:
        raise ValueError('expected an object with exactly "type", "subject", "version" and "data"')
    schema = SCHEMAS.get(record["type"]) if isinstance(record["type"], str) else None
    if schema is None:
        raise ValueError(f"unknown event type {record['type']!r}")
    version = record["version"]
    if type(version) is not int or version < 1:
        raise ValueError(f"version {version!r} is not a positive integer")
    if not isinstance(record["data"], dict):
        raise ValueError('"data" is not an object')
    try:
        subject = CONVERTERS[UUID](record["subject"])
    except ValueError as error:
        raise ValueError(f"subject: {error}") from None
    return schema.build(subject, version, record["data"], recorded)


def numbered_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of every line that is not blank."""
    for number, line in enumerate(stream, 1):
        if line.strip():
            yield number, line


# --- versions ---------------------------------------------------------------------------------------


class VersionCheck:
    """Each aggregate's versions must run on 1, 2, 3… from the last one the log holds."""

    def __init__(self, app: CrmApplication) -> None:
        self._recorder = app.recorder
        self._log_is_empty = app.event_count() == 0
        self._last: dict[int, int] = {}  # by the id's 128-bit integer: a third of the memory of UUID keys

    def _logged(self, aggregate_id: UUID) -> int:
        if self._log_is_empty:
            return 0
        latest = self._recorder.select_events(aggregate_id, desc=True, limit=1)
        return latest[0].originator_version if latest else 0

    def check(self, event: Any) -> None:
        aggregate_id, version = event.originator_id, event.originator_version
        last = self._last.get(aggregate_id.int)
        where = "earlier in the file"
        if last is None:
            last, where = self._logged(aggregate_id), "in the log"
        if version != last + 1:
            held = f"version {last} is the last {where}" if last else "it has no events yet"
            raise ValueError(f"{event_type(event)} of {aggregate_id} has version {version}, "
                             f"but {held}: expected version {last + 1}")
        self._last[aggregate_id.int] = version


# --- the two passes ---------------------------------------------------------------------------------


def check_history(app: CrmApplication, source: IO[bytes],
                  on_bytes: Callable[[int], None] = lambda done: None) -> int:
    """Pass 1: every line must parse into its event and continue its aggregate's versions; returns the count."""
    versions, recorded, count, read = VersionCheck(app), datetime.now(timezone.utc), 0, 0
    for number, line in numbered_lines(source):
        try:
            versions.check(parse_event(line, recorded))
        except ValueError as error:
            raise ImportRefused(number, str(error)) from None
        count += 1
        read += len(line)
        if count % PROGRESS_EVERY == 0:
            on_bytes(read)
    on_bytes(read)
    return count


def event_batches(source: IO[bytes], batch: int) -> Iterator[list[Any]]:
    """The (already checked) events of the file in lists of `batch`, recorded now."""
    recorded, events = datetime.now(timezone.utc), []
    for _, line in numbered_lines(source):
        events.append(parse_event(line, recorded))
        if len(events) == batch:
            yield events
            events = []
    if events:
        yield events


def write_history(app: CrmApplication, source: IO[bytes], batch: int,
                  on_events: Callable[[int], None] = lambda done: None) -> int:
    """Pass 2: map and write the events, one transaction per batch; returns how many were written."""
    write, written = batch_writer(app), 0
    for events in event_batches(source, batch):
        subjects = subjects_of(events)
        app.keys.ensure(subjects)  # personal data is sealed with its subject's key: one round trip
        write([app.mapper.to_stored_event(event) for event in events])
        app.keys.evict(subjects)  # the key cache would otherwise grow with every person in the file
        written += len(events)
        on_events(written)
    return written


def batch_writer(app: CrmApplication) -> Callable[[list[StoredEvent]], None]:
    """Writes one batch in one transaction: COPY on PostgreSQL, the recorder's insert elsewhere."""
    if app.database.kind == "postgresql":
        return PostgresCopyWriter(app).write
    return app.recorder.insert_events


class PostgresCopyWriter:
    """A batch as one binary COPY into the log's table, under the recorder's own table lock."""

    def __init__(self, app: CrmApplication) -> None:
        recorder = app.recorder
        self._datastore = recorder.datastore  # type: ignore[attr-defined]
        table = sql.Identifier(self._datastore.schema, recorder.events_table_name)  # type: ignore[attr-defined]
        self._lock = recorder.lock_table_statements  # type: ignore[attr-defined]
        self._copy = sql.SQL("COPY {} (originator_id, originator_version, topic, state) "
                             "FROM STDIN (FORMAT BINARY)").format(table)
        self._notify = sql.SQL("NOTIFY {}").format(sql.Identifier(recorder.channel_name))  # type: ignore[attr-defined]

    def write(self, stored_events: list[StoredEvent]) -> None:
        with self._datastore.get_connection() as connection, connection.transaction(), \
                connection.cursor() as cursor:
            for statement in self._lock:
                cursor.execute(statement)
            with cursor.copy(self._copy) as copy:
                copy.set_types(["uuid", "int8", "text", "bytea"])
                for stored in stored_events:
                    copy.write_row((stored.originator_id, stored.originator_version, stored.topic, stored.state))
            cursor.execute(self._notify)


def import_history(app: CrmApplication, path: Path, batch: int = DEFAULT_BATCH,
                   on_progress: Progress = lambda phase, done, total: None) -> int:
    """Import a JSON Lines history into the log; returns how many events were written.

    Raises ImportRefused (naming the line) and writes nothing if any line is bad.
    """
    size = path.stat().st_size
    with path.open("rb") as source:
        count = check_history(app, source, lambda done: on_progress("checking", done, size))
        source.seek(0)
        return write_history(app, source, batch, lambda done: on_progress("writing", done, count))
