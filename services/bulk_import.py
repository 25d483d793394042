"""`crm import`: history from JSON Lines into the event log, checked whole before anything is written.

The format is what `services.history_export` writes, one event per line in log order:
`{"type": "crm.Deal.StageChanged", "subject": "<aggregate uuid>", "version": 3, "data": {...}}`,
`data` holding the event's own fields as `gateways.kafka.cloudevents.event_data` gives them. Blank
lines are skipped. Events keep their business time (`occurred_at`); `timestamp` is when they are imported.

Two streaming passes over the file keep memory flat and make a refused file write nothing:

1. check (`services.history_lines.read_line`): every line must be an event of the catalogue whose fields
   convert with its class's type hints, and each aggregate's versions must run on 1, 2, 3… from what the
   log already holds (the only state kept is a dict aggregate → last version, and a CRC-32 per batch).
   The first bad line refuses the file. No domain event is built.
2. write: the lines are read again, not checked again (the CRC of each batch must match the check's),
   and turned straight into stored events by `services.stored_state` (the mapper's very bytes; personal
   fields sealed with their subject's key, so each chunk's data subjects get their keys first, as
   `CrmApplication.save_new` does). Each batch is one transaction: on PostgreSQL one binary `COPY` under
   the recorder's own table lock, fed row by row as the rows are made, so its notification ids are one
   uninterrupted run: the log stays gap-free and in file order. Elsewhere the recorder's `insert_events`
   writes each batch.

Parsing twice costs less than spooling encoded events to disk and reading them back: the second parse
is a fraction of the encoding, which either way must happen once. Another writer appending to an
aggregate of the file between the passes makes that batch fail (primary key); the batches before it
stay written, as any committed transaction does.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import IO, NamedTuple
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg import sql

from domain.personal_data import PERSONAL_FIELDS
from services.application import CrmApplication
from services.history_lines import HistoryLine, numbered_lines, read_line, reread_line
from services.stored_state import StateEncoders

DEFAULT_BATCH = 20_000
KEY_CHUNK = 5000  # lines whose subjects get their keys at once: well under KeyStore's cache bound
PROGRESS_EVERY = 5000  # lines between progress reports while checking

Progress = Callable[[str, int, int], None]  # phase ("checking" in bytes, "writing" in events), done, total
Row = tuple[str, int, str, bytes]  # a stored event: originator id (as str(UUID) writes it), version, topic, state


class ImportRefused(ValueError):
    """The file cannot be imported as it is; nothing was written."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line


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

    def check(self, line: HistoryLine) -> None:
        key, version = int(line.subject.replace("-", ""), 16), line.version
        last = self._last.get(key)
        where = "earlier in the file"
        if last is None:
            last, where = self._logged(UUID(int=key)), "in the log"
        if version != last + 1:
            held = f"version {last} is the last {where}" if last else "it has no events yet"
            raise ValueError(f"{line.schema.name} of {line.subject} has version {version}, "
                             f"but {held}: expected version {last + 1}")
        self._last[key] = version


# --- the two passes ---------------------------------------------------------------------------------


class CheckedFile(NamedTuple):
    """What the check pass learnt: how many events, and a CRC-32 of each chunk of lines (see `chunk_size`)."""

    events: int
    checksums: list[int]


class FileChanged(RuntimeError):
    """The file changed between the check and the write; the batches before the changed one were written."""


def chunk_size(batch: int) -> int:
    """Lines the write pass encodes at once: a batch is cut in chunks of this many (the last may be shorter)."""
    return min(batch, KEY_CHUNK)


def check_history(app: CrmApplication, source: IO[bytes], batch: int,
                  on_bytes: Callable[[int], None] = lambda done: None) -> CheckedFile:
    """Pass 1: every line must be a valid event continuing its aggregate's versions."""
    versions, chunk, count, read, crc, checksums = VersionCheck(app), chunk_size(batch), 0, 0, 0, []
    for number, line in numbered_lines(source):
        try:
            versions.check(read_line(line))
        except ValueError as error:
            raise ImportRefused(number, str(error)) from None
        crc = zlib.crc32(line, crc)
        count += 1
        read += len(line)
        if count % batch % chunk == 0:  # the end of a chunk
            checksums.append(crc)
            crc = 0
        if count % PROGRESS_EVERY == 0:
            on_bytes(read)
    if count % batch % chunk:
        checksums.append(crc)
    on_bytes(read)
    return CheckedFile(count, checksums)


class HistoryWriter:
    """Pass 2: the checked lines as stored events, `batch` per transaction, without checking them again.

    A transaction's lines are read in chunks: each chunk must have the CRC the check found (else the
    transaction is rolled back and FileChanged raised); its data subjects get their keys (one round trip,
    as `CrmApplication.save_new` does) before its personal fields are sealed, and are evicted from the key
    cache after it (which would otherwise grow with every person in the file).
    """

    def __init__(self, app: CrmApplication, batch: int) -> None:
        self._keys, self._batch, self._chunk = app.keys, batch, chunk_size(batch)
        self._write = batch_writer(app)
        self._encoders = StateEncoders(app.mapper, app.keys.seal, recorded=datetime.now(timezone.utc))
        self._sent = 0  # events handed to the writer so far

    def write(self, source: IO[bytes], checked: CheckedFile, on_events: Callable[[int], None]) -> int:
        """Write the file `check_history` checked; returns how many events were written."""
        lines, checksums, written = (line for _, line in numbered_lines(source)), iter(checked.checksums), 0
        while written < checked.events:
            self._write(self._rows(islice(lines, self._batch), checksums, written, on_events))
            if self._sent == written:
                raise FileChanged(f"the file ended after {written:,} of the {checked.events:,} events checked, "
                                  "which were imported")
            written = self._sent
        return written

    def _rows(self, lines: Iterator[bytes], checksums: Iterator[int], before: int,
              on_events: Callable[[int], None]) -> Iterator[Row]:
        """One transaction's rows; `before` events were written by the transactions before it."""
        stored, self._sent = self._encoders.stored, before
        for chunk in iter(lambda: list(islice(lines, self._chunk)), []):
            if zlib.crc32(b"".join(chunk)) != next(checksums, None):
                raise FileChanged(f"the file changed after it was checked: {before:,} events were imported "
                                  "before the batch that changed")
            checked = [reread_line(line) for line in chunk]
            subjects = {line.subject for line in checked if line.schema.cls in PERSONAL_FIELDS}  # about itself
            self._keys.ensure(subjects)
            for line in checked:
                yield (line.subject, line.version, *stored(line))
            self._keys.evict(subjects)
            self._sent += len(chunk)
            on_events(self._sent)


def batch_writer(app: CrmApplication) -> Callable[[Iterable[Row]], None]:
    """Writes one batch in one transaction: COPY on PostgreSQL, the recorder's insert elsewhere."""
    if app.database.kind == "postgresql":
        return PostgresCopyWriter(app).write
    return lambda rows: app.recorder.insert_events([StoredEvent(UUID(subject), version, topic, state)
                                                    for subject, version, topic, state in rows])


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

    def write(self, rows: Iterable[Row]) -> None:
        """Rows are sent as they come, so the server stores them while the next ones are made."""
        with self._datastore.get_connection() as connection, connection.transaction(), \
                connection.cursor() as cursor:
            for statement in self._lock:
                cursor.execute(statement)
            with cursor.copy(self._copy) as copy:
                copy.set_types(["bytea", "int8", "text", "bytea"])  # a uuid's binary form: its 16 bytes, as bytea's
                for subject, version, topic, state in rows:
                    copy.write_row((bytes.fromhex(subject.replace("-", "")), version, topic, state))
            cursor.execute(self._notify)


def import_history(app: CrmApplication, path: Path, batch: int = DEFAULT_BATCH,
                   on_progress: Progress = lambda phase, done, total: None) -> int:
    """Import a JSON Lines history into the log; returns how many events were written.

    Raises ImportRefused (naming the line) and writes nothing if any line is bad.
    """
    size = path.stat().st_size
    with path.open("rb") as source:
        checked = check_history(app, source, batch, lambda done: on_progress("checking", done, size))
        source.seek(0)
        return HistoryWriter(app, batch).write(source, checked,
                                               lambda done: on_progress("writing", done, checked.events))
