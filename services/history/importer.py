"""`crm import`: history from JSON Lines into the event log, checked whole before anything is written.

The format is what `services.history.exporter` writes, one event per line in log order:
`{"type": "crm.Deal.StageChanged", "subject": "<aggregate uuid>", "version": 3, "data": {...}}`,
`data` holding the event's own fields as `gateways.kafka.cloudevents.event_data` gives them. Blank
lines are skipped. Events keep their business time (`occurred_at`) and, when the line gives `recorded_at`,
their recorded time (`timestamp`); a line without it is recorded when it is imported.

On PostgreSQL (`_import_in_one_pass`) each line is parsed once: worker processes
(`services.history.import_workers.encoded_chunk`) check a chunk's lines (every line must be an event of the
catalogue whose fields convert with its class's type hints and pass its command's field rules) and encode
them straight into stored events by `services.history.stored_state` (the mapper's very bytes; personal
fields sealed with their record's key, `services.keys.derived_keys`) in PostgreSQL's binary COPY format;
this process runs the in-order rules (versions on 1, 2, 3… from what the log holds, creation first,
references, lifecycles: `services.history.rules`) and streams the chunks that passed into one transaction
under the recorder's table lock, a COPY per batch, so its notification ids are one uninterrupted run in file
order. The transaction commits only after the last line passed, the records' new keys moved into the key
table in it: a refused file (or a crash) writes nothing, not even a key. Before, the file was read twice
(check, then parse again to write, batches committed one by one): ≈ 1/3 of the workers' CPU went to the
second parse and to creating keys one INSERT each.

Elsewhere (SQLite, and the sharded import, which checks against every shard before writing to each), two
streaming passes keep memory flat and make a refused file write nothing:

1. check (`services.history.event_lines.read_line`): as above; the only state kept is the rules' compact
   state per aggregate and a CRC-32 per batch. The first bad line refuses the file.
2. write: the lines are read again, not checked again (the CRC of each chunk must match the check's),
   and turned into stored events as above (each chunk's data subjects get their keys first, as
   `CrmApplication.save_new` does). Each batch is one transaction: on PostgreSQL one binary `COPY` under
   the recorder's own table lock; elsewhere the recorder's `insert_events`. Another writer appending to an
   aggregate of the file between the passes makes that batch fail (primary key); the batches before it
   stay written, as any committed transaction does.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from functools import partial
from itertools import count, groupby, islice
from pathlib import Path
from typing import IO, Any, NamedTuple, TypeVar
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg import sql

from services.application import CrmApplication
from services.history.event_lines import numbered_lines
from services.history.rules import HistoryRules, log_holder, log_loader
from services.history.import_workers import (COPY_HEADER, COPY_TRAILER, Chunk, Encoded, ImportWorkers, Problem,
                                             Row, checked_chunk, copy_chunk, copy_data, encoded_chunk,
                                             encoded_in_worker, stored_rows, unpacked)
from services.keys.derived_keys import (ANY_KEY, HOLD_KEYS, KEYS_FROM_STAGING, KEYS_INTO_EMPTY, STAGING, STAGING_DDL,
                                        DerivedKeys, KeyRow, import_secret)
from services.history.stored_state import StateEncoders

DEFAULT_BATCH = 20_000
log = logging.getLogger(__name__)
_QUOTED = re.compile(r"""(field )?('[^']*'|"[^"]*")""")  # a value as repr quotes it, or a field's name (kept)
_LONG_NUMBER = re.compile(r"(?<![0-9a-fA-F-])\d{5,}(?![0-9a-fA-F-])")  # a phone number, say; not part of an id
KEY_CHUNK = 5000  # lines whose subjects get their keys at once: well under KeyStore's cache bound
# The library's 5 s would end the import's transaction while a loaded machine's workers encode the next batch
# (seen at load 12 on 2 cores); a process that stopped answering still loses its lock after a minute.
IDLE_TIMEOUT = "SET LOCAL idle_in_transaction_session_timeout = '60s'"
PARALLEL_FROM_BYTES = 20 << 20  # a file this big is worth starting worker processes for (≈ 1 s)
# One pass hands a worker whole lines as the file holds them, this many bytes at a time (≈ 2,900 lines of the
# benchmark's history; the workers' chunk keys stay in memory only while it is sealed): reading the file a line
# at a time and pickling the lines cost the importing process, the serial part, ≈ 0.8 µs a line.
BLOCK_BYTES = 1 << 20

Progress = Callable[[str, int, int], None]  # phase ("checking" in bytes, "writing" in events), done, total
T = TypeVar("T")


class ImportRefused(ValueError):
    """The file cannot be imported as it is; nothing was written."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line, self.problem = line, problem


def without_values(reason: str) -> str:
    """A refusal's reason for the log: the values it quotes (which may be personal data) cut, field names,
    ids and small numbers kept."""
    return _LONG_NUMBER.sub("…", _QUOTED.sub(lambda quoted: quoted[0] if quoted[1] else "'…'", reason))


# --- the two passes ---------------------------------------------------------------------------------


class CheckedFile(NamedTuple):
    """What the check pass learnt: how many events, and a CRC-32 of each chunk of lines (see `chunk_size`)."""

    events: int
    checksums: list[int]


class FileChanged(RuntimeError):
    """The file changed between the check and the write; the batches before the changed one were written."""


def chunk_size(batch: int) -> int:
    """Lines handled at once: a batch is cut in chunks of this many (the last may be shorter)."""
    return min(batch, KEY_CHUNK)


def chunks(source: IO[bytes], batch: int) -> Iterator[Chunk]:
    """The file's non-blank lines, `batch` per transaction, each batch cut in chunks of `chunk_size(batch)`."""
    numbered, size = numbered_lines(source), chunk_size(batch)
    for number in count():
        in_batch, empty = islice(numbered, batch), True
        while piece := list(islice(in_batch, size)):
            empty = False
            yield Chunk(number, [n for n, _ in piece], [line for _, line in piece])
        if empty:
            return


def _each(work: Callable[[list[bytes]], T], of: Iterable[Chunk], workers: ImportWorkers | None
          ) -> Iterator[tuple[Chunk, T]]:
    """Each chunk with `work` of its lines: by the workers if there are any, else here."""
    return workers.ordered(work, of) if workers else ((chunk, work(chunk.lines)) for chunk in of)


def check_history(app: CrmApplication, source: IO[bytes], batch: int,
                  on_bytes: Callable[[int], None] = lambda done: None,
                  workers: ImportWorkers | None = None) -> CheckedFile:
    """Pass 1: every line must be a valid event continuing its aggregate's versions, one its command could
    have recorded (`services.history.rules`); the first bad line in file order is the one refused."""
    rules, events, read, checksums = HistoryRules(log_loader(app), log_holder(app)), 0, 0, []
    for chunk, (found, problem) in _each(checked_chunk, chunks(source, batch), workers):
        rules.check_all(chunk.numbers, found)
        if problem is not None:
            _refuse_and_read_on(rules, chunk, problem)
        if rules.failure is not None and not rules.reading_on():
            break
        data = b"".join(chunk.lines)
        checksums.append(zlib.crc32(data))
        events, read = events + len(chunk.lines), read + len(data)
        on_bytes(read)
    failure = rules.finish()
    if failure is not None:
        raise ImportRefused(*failure)
    return CheckedFile(events, checksums)


def _refuse_and_read_on(rules: HistoryRules, chunk: Chunk, problem: Problem) -> None:
    """Refuse a chunk's bad line, then read the rest of the chunk while an earlier line still waits for a
    reference: the creation it waits for may follow the bad line in the same chunk (a lead's Converted, a
    bad line of its customer, then its deal's Opened). Once a refused import, so the parent does it."""
    start = 0
    while problem is not None:
        start += problem[0]
        rules.refuse(chunk.numbers[start], problem[1], created=problem[2])
        start += 1
        if not rules.reading_on() or start == len(chunk.lines):
            return
        found, problem = checked_chunk(chunk.lines[start:])
        rules.check_all(chunk.numbers[start:], found)


class HistoryWriter:
    """Pass 2: the checked lines as stored events, `batch` per transaction, without checking them again.

    Each chunk must have the CRC the check found before its rows are written (else the transaction is
    rolled back and FileChanged raised).
    """

    def __init__(self, app: CrmApplication, batch: int, workers: ImportWorkers | None = None) -> None:
        self._app, self._batch, self._workers = app, batch, workers
        self._encoders = StateEncoders(app.mapper, app.keys.seal_all, recorded=datetime.now(timezone.utc))
        self._sent = 0  # events handed to the writer so far

    def write(self, source: IO[bytes], checked: CheckedFile, on_events: Callable[[int], None]) -> int:
        """Write the file `check_history` checked; returns how many events were written."""
        if self._app.database.kind == "postgresql":
            encode: Callable[[list[bytes]], Any] = copy_chunk if self._workers else self._copy_data
            write_batch = PostgresCopyWriter(self._app).write
        else:
            encode, write_batch = self._rows, self._insert
        checksums, self._sent = iter(checked.checksums), 0
        encoded = _each(encode, chunks(source, self._batch), self._workers)
        for number, (_, batch) in enumerate(groupby(encoded, key=lambda done: done[0].batch), 1):
            before = self._sent
            write_batch(self._checked(batch, checksums, on_events))
            log.info("import: batch %d written: %d events (%d in all)", number, self._sent - before, self._sent,
                     extra={"component": "import", "action": "batch", "batch": number,
                            "events": self._sent - before, "total": self._sent})
        if self._sent < checked.events:
            raise FileChanged(f"the file ended after {self._sent:,} of the {checked.events:,} events checked, "
                              "which were imported")
        return self._sent

    def _checked(self, batch: Iterable[tuple[Chunk, T]], checksums: Iterator[int],
                 on_events: Callable[[int], None]) -> Iterator[T]:
        """One transaction's encoded chunks, each only once its lines proved to be the checked ones."""
        written = self._sent
        for chunk, encoded in batch:
            if zlib.crc32(b"".join(chunk.lines)) != next(checksums, None):
                raise FileChanged(f"the file changed after it was checked: {written:,} events were imported "
                                  "before the batch that changed")
            yield encoded
            self._sent += len(chunk.lines)
            on_events(self._sent)

    def _rows(self, lines: list[bytes]) -> list[Row]:
        return stored_rows(self._app.keys, self._encoders, lines)

    def _copy_data(self, lines: list[bytes]) -> bytes:
        return copy_data(self._rows(lines))

    def _insert(self, batch: Iterable[list[Row]]) -> None:
        """Elsewhere than on PostgreSQL: the recorder's insert, one transaction per batch."""
        self._app.recorder.insert_events([StoredEvent(UUID(subject), version, topic, state)
                                          for rows in batch for subject, version, topic, state in rows])


class PostgresCopyWriter:
    """A batch as one binary COPY into the log's table, under the recorder's own table lock."""

    def __init__(self, app: CrmApplication) -> None:
        recorder = app.recorder
        self.datastore = recorder.datastore  # type: ignore[attr-defined]
        table = sql.Identifier(self.datastore.schema, recorder.events_table_name)  # type: ignore[attr-defined]
        self.lock = recorder.lock_table_statements  # type: ignore[attr-defined]
        self.copy_events = sql.SQL("COPY {} (originator_id, originator_version, topic, state) "
                             "FROM STDIN (FORMAT BINARY)").format(table)

    def write(self, data: Iterable[bytes]) -> None:
        """COPY data (see `copy_data`) is sent as it comes, so the server stores it while the next is made."""
        with self.datastore.get_connection() as connection, connection.transaction(), \
                connection.cursor() as cursor:
            for statement in self.lock:
                cursor.execute(statement)
            with cursor.copy(self.copy_events) as copy:
                copy.write(COPY_HEADER)
                for piece in data:
                    copy.write(piece)
                copy.write(COPY_TRAILER)


def import_history(app: CrmApplication, path: Path, batch: int = DEFAULT_BATCH,
                   on_progress: Progress = lambda phase, done, total: None, jobs: int | None = None) -> int:
    """Import a JSON Lines history into the log; returns how many events were written.

    Raises ImportRefused (naming the line) and writes nothing if any line is bad. On PostgreSQL, `jobs`
    worker processes parse and encode the lines (default: one per core for files of `PARALLEL_FROM_BYTES`
    or more; 1 means all in this process).
    """
    try:
        written = _import(app, path, batch, on_progress, jobs)
    except ImportRefused as refused:
        log.warning("import: refused line %d: %s; nothing was written", refused.line, without_values(refused.problem),
                    extra={"component": "import", "action": "refusal", "line": refused.line,
                           "reason": without_values(refused.problem)})
        raise
    except Exception as error:
        log.error("import: stopped: %s: %s", type(error).__name__, error,
                  extra={"component": "import", "action": "stop", "cause": type(error).__name__})
        raise
    log.info("import: done, %d events written", written, extra={"component": "import", "action": "stop",
                                                                 "cause": None, "total": written})
    return written


def _import(app: CrmApplication, path: Path, batch: int, on_progress: Progress, jobs: int | None) -> int:
    size, jobs = path.stat().st_size, worker_count(app, path, jobs)
    if app.database.kind == "postgresql":
        return _import_in_one_pass(app, path, batch, lambda done: on_progress("importing", done, size), jobs)
    starting = ImportWorkers(app.database.url, jobs, recorded=datetime.now(timezone.utc)) if jobs else nullcontext()
    with starting as workers, path.open("rb") as source:
        checked = check_history(app, source, batch, lambda done: on_progress("checking", done, size), workers)
        source.seek(0)
        return HistoryWriter(app, batch, workers).write(source, checked,
                                                        lambda done: on_progress("writing", done, checked.events))


def worker_count(app: CrmApplication, path: Path, jobs: int | None = None) -> int:
    """How many worker processes `import_history` starts (0: none, all in this process): `jobs` if more than
    one, by default one per core for a file of `PARALLEL_FROM_BYTES` or more; only on PostgreSQL."""
    if jobs is None:
        jobs = (os.cpu_count() or 1) if path.stat().st_size >= PARALLEL_FROM_BYTES else 1
    return jobs if jobs > 1 and app.database.kind == "postgresql" else 0


# --- PostgreSQL: one pass, one transaction ------------------------------------------------------------


def _import_in_one_pass(app: CrmApplication, path: Path, batch: int, on_bytes: Callable[[int], None],
                        jobs: int) -> int:
    """Each line parsed once: checked, encoded and copied in one transaction that commits only once the whole
    file passed (`OnePassCopy`); a refusal rolls everything back, keys included."""
    recorded, secret = datetime.now(timezone.utc), import_secret()
    if jobs:
        with ImportWorkers(app.database.url, jobs, recorded, secret) as workers:
            return _one_pass(app, path, batch, on_bytes, lambda look_up: partial(encoded_in_worker, look_up=look_up),
                             workers)
    keys = DerivedKeys(app.keys, secret)
    encoders = StateEncoders(app.mapper, keys.seal_all, recorded)
    return _one_pass(app, path, batch, on_bytes,
                     lambda look_up: lambda lines: encoded_chunk(keys, encoders, lines, look_up), None)


def _one_pass(app: CrmApplication, path: Path, batch: int, on_bytes: Callable[[int], None],
              work_for: Callable[[bool], Callable[[list[bytes]], Encoded]], workers: ImportWorkers | None) -> int:
    """`work_for(look_up)`: what encodes a chunk, asking the key table for its records' keys if `look_up`
    (only if the table held any key when the import locked it: `OnePassCopy.keys_held`)."""
    rules, counted = HistoryRules(log_loader(app), log_holder(app)), [0, 0, 0]  # events, bytes, lines

    def passed(encoded: Iterable[tuple[Chunk, BlockLines]]) -> Iterator[tuple[Chunk, bytes, list[KeyRow]]]:
        """The chunks whose lines pass the in-order rules too, until the first refusal (then the file is read
        on only as far as `check_history` reads it, to name the first bad line)."""
        for block, (lines, blank, (found, problem, data, new_keys)) in encoded:
            numbers = _numbers(counted[2], lines, blank)
            counted[2] += lines
            rules.check_all(numbers, unpacked(found))
            if problem is not None:
                _refuse_and_read_on(rules, Chunk(block.batch, numbers, non_blank_lines(block.lines[0])[0]), problem)
            if rules.failure is not None:
                if not rules.reading_on():
                    return
                continue
            counted[0] += len(numbers)
            counted[1] += len(block.lines[0])
            on_bytes(counted[1])
            yield block, data, new_keys

    with path.open("rb", buffering=0) as source, fewer_collections(), one_transaction(app) as copy:
        work = partial(lines_of_block, work_for(copy.keys_held))
        for number, (_, in_batch) in enumerate(groupby(passed(_each(work, blocks(source, batch), workers)),
                                                       key=lambda item: item[0].batch), 1):
            copy.write(in_batch)
            log.info("import: batch %d copied (%d events in all, committed at the end)", number, counted[0],
                     extra={"component": "import", "action": "batch", "batch": number, "total": counted[0]})
        failure = rules.finish()
        if failure is not None:
            raise ImportRefused(*failure)  # before the commit: nothing was written
    return counted[0]


@contextmanager
def fewer_collections() -> Iterator[None]:
    """The cyclic garbage collector less often while the rules' state grows (a `Tracked` per aggregate, long
    lived, traversed again by each collection; the lines' facts are freed as they go, without cycles), and not
    through what the process held before (frozen, as the workers do): ≈ 0.3 µs a line of the importing process
    on the 200k history, more with more aggregates."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


BlockLines = tuple[int, list[int] | None, Encoded]  # lines in the block, the blank ones (if any), the work's answer


def blocks(source: IO[bytes], batch: int) -> Iterator[Chunk]:
    """The file as blocks of whole lines of about `BLOCK_BYTES`, each as a chunk whose one "line" is the block
    (line numbers are known once a worker split it: `lines_of_block`), `batch // KEY_CHUNK` blocks a batch."""
    per_batch, rest = max(1, batch // KEY_CHUNK), b""
    for index in count():
        data = rest + source.read(BLOCK_BYTES)
        cut = data.rfind(b"\n") + 1
        while cut == 0 and (more := source.read(BLOCK_BYTES)):  # a line longer than a block: read on to its end
            data += more
            cut = data.rfind(b"\n") + 1
        if not data:
            return
        if cut in (0, len(data)):  # the file's last line (without a newline), or a block ending at a line's end
            block, rest = data, b""
        else:
            block, rest = data[:cut], data[cut:]
        yield Chunk(index // per_batch, [], [block])


def lines_of_block(work: Callable[[list[bytes]], Encoded], block: list[bytes]) -> BlockLines:
    """In a worker: `work` of a block's non-blank lines, with how many lines it holds and which are blank."""
    lines, total, blank = non_blank_lines(block[0])
    return total, blank, work(lines)


def non_blank_lines(block: bytes) -> tuple[list[bytes], int, list[int] | None]:
    """A block's non-blank lines (without their newline: JSON's whitespace), how many lines it holds, and the
    indices of its blank ones (None: none is), as `numbered_lines` tells them (`isspace`)."""
    lines = block.split(b"\n")
    if block.endswith(b"\n"):
        lines.pop()
    if b"" not in lines and not any(map(bytes.isspace, lines)):
        return lines, len(lines), None
    blank = [index for index, line in enumerate(lines) if not line or line.isspace()]
    return [line for line in lines if line and not line.isspace()], len(lines), blank


def _numbers(before: int, lines: int, blank: list[int] | None) -> list[int]:
    """The numbers of a block's non-blank lines, `before` lines of the file preceding it."""
    if blank is None:
        return list(range(before + 1, before + lines + 1))
    skipped = set(blank)
    return [before + 1 + index for index in range(lines) if index not in skipped]


class OnePassCopy:
    """Batches as binary COPYs of events in one open transaction, their new keys staged beside them."""

    def __init__(self, cursor: Any, copy_events: sql.Composed, keys_held: bool = True) -> None:
        self._cursor, self._copy = cursor, copy_events
        self.keys_held = keys_held  # whether the key table held any key once locked (`derived_keys.ANY_KEY`)

    def write(self, batch: Iterable[tuple[Chunk, bytes, list[KeyRow]]]) -> None:
        new_keys: dict[str, KeyRow] = {}  # one row per record: its chunks each give one (a third of the rows)
        with self._cursor.copy(self._copy) as copy:
            copy.write(COPY_HEADER)
            for _, data, keys in batch:
                copy.write(data)
                for row in keys:  # the row naming the record's person wins, as in KEYS_FROM_STAGING
                    if row[2] is not None or row[0] not in new_keys:
                        new_keys[row[0]] = row
            copy.write(COPY_TRAILER)
        with self._cursor.copy(f"COPY {STAGING} FROM STDIN") as copy:
            for row in new_keys.values():
                copy.write_row(row)


@contextmanager
def one_transaction(app: CrmApplication) -> Iterator[OnePassCopy]:
    """The whole import as one transaction under the recorder's table lock: each batch one binary COPY of
    events, its new keys staged (`services.keys.derived_keys`) and moved into the key table at the end.
    Any exception rolls it all back (the notification ids it took are skipped, as after any rolled-back
    insert: the log's order stays that of the commits)."""
    writer = PostgresCopyWriter(app)
    with writer.datastore.get_connection() as connection, connection.transaction(), connection.cursor() as cursor:
        cursor.execute(IDLE_TIMEOUT)
        for statement in [*writer.lock, HOLD_KEYS, STAGING_DDL]:
            cursor.execute(statement)
        keys_held = cursor.execute(ANY_KEY).fetchone()["held"]  # under HOLD_KEYS: stays so until the commit
        yield OnePassCopy(cursor, writer.copy_events, keys_held)
        started = time.perf_counter()
        if keys_held:
            unplaced = cursor.execute(KEYS_FROM_STAGING).fetchone()["unplaced"]  # the library's rows are dicts
        else:
            cursor.execute(KEYS_INTO_EMPTY)
            unplaced = 0
        log.info("import: keys placed in %.2f s", time.perf_counter() - started,
                 extra={"component": "import", "action": "keys"})
        if unplaced:
            raise RuntimeError(f"{unplaced} records of the file got a key from another writer during the import: "
                               "its seals would not open; nothing was imported")
