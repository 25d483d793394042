"""`crm import`'s per-line work shared out among processes, a chunk of lines at a time, in file order.

The parent keeps everything that needs the whole file (each aggregate's state for the in-order rules, the
transaction); a worker parses and checks a chunk's lines and, in the same parse, gives its data subjects their
keys and encodes its stored events as rows of PostgreSQL's binary COPY format (`encoded_chunk`), so the parent
only checks the facts and writes the bytes. (The two-pass path, off PostgreSQL and across shards, has the
halves apart: `checked_chunk`, then `copy_chunk`/`stored_rows`.) At most `AHEAD` chunks per worker are in
flight: memory stays flat.

Where the crm_native extension is built (`native_encoder`: Rust, PyO3), a worker hands each chunk to it in one
call (`native_encoded_chunk`): it parses export's own lines, checks them, takes their field facts when it is
sure they pass, and writes their COPY rows with sealed states and their records' derived keys — 4.7 µs a line
against the Python path's 20–23. The lines it is not sure of come back as None and take the Python path in
place (so refusals keep their messages and line numbers); those whose facts it leaves to `field_facts` come
back as HistoryLines. If the key table held keys when the import locked it (`look_up`), it is asked once per
chunk for its records' keys, as the Python path asks.
`worker_path()` says which runs (`CRM_IMPORT_NATIVE=0`: Python).
"""

from __future__ import annotations

import gc
import logging
import marshal
import multiprocessing
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import datetime
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

import orjson

from domain.base import CrmAggregate
from services.application import CrmApplication
from services.history.event_lines import SCHEMAS, HistoryLine, canonical_uuid, reread_line
from services.history.line_decoder import decoded_line
from services.history.native_encoder import available, native_encoder
from services.history.rules import Facts, Refusal, field_facts
from services.keys.derived_keys import DerivedKeys, KeyRow
from services.keys.key_store import KeyStore
from services.keys.sealing import subjects_of_lines
from services.settings import database_from_url
from services.history.stored_state import StateEncoders

AHEAD = 2  # chunks in flight per worker
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)  # signature, flags, no header extension
COPY_TRAILER = struct.pack("!h", -1)
_ROW_START = struct.Struct("!hi16siqi")  # 4 fields; the uuid's 16 bytes; the version's 8; the topic's length
_LENGTH = struct.Struct("!i")
_encoded_topics: dict[str, bytes] = {}
log = logging.getLogger(__name__)

Found = list[Facts]  # what the in-order checks need of each line
# (index of the first bad line in the chunk, what is wrong, the aggregate (as an int) it creates if a creation)
Problem = tuple[int, str, int | None] | None
# What one pass makes of a chunk: `checked_chunk`'s answer (its Found as `marshal` writes it: see `packed`), the
# good lines' COPY data and their new keys' rows.
Encoded = tuple[bytes, Problem, bytes, list[KeyRow]]
Row = tuple[str, int, str, bytes]  # a stored event: originator id (as str(UUID) writes it), version, topic, state
C = TypeVar("C", bound="Chunk")
T = TypeVar("T")


class Chunk(NamedTuple):
    """Consecutive non-blank lines of one batch (one transaction), with their line numbers."""

    batch: int
    numbers: list[int]
    lines: list[bytes]


_app: CrmApplication | None = None
_encoders: StateEncoders | None = None
_derived: DerivedKeys | None = None
_native: Any = None  # the compiled encoder (`native_encoder`), when installed and the import is in one pass


def worker_path() -> str:
    """Which code does a worker's per-line work: "native" (the crm_native extension) or "python"."""
    return "native" if available() else "python"


def _start(url: str, recorded: datetime, secret: bytes | None) -> None:
    global _app, _encoders, _derived, _native
    _app = CrmApplication(database_from_url(url))
    _derived = DerivedKeys(_app.keys, secret) if secret is not None else None
    # one pass: sealed with the chunk's keys, derived or read (`derived_keys`); two: with the key store's
    _encoders = StateEncoders(_app.mapper, _derived.seal_all if _derived is not None else _app.keys.seal_all, recorded)
    if secret is not None:
        _native = native_encoder(_app.mapper, recorded, secret)
    # What the worker holds from now on (modules, schemas, encoders: ≈ 43,000 objects) is never garbage: kept
    # out of the collector's full passes, which traversed it all again every few chunks (≈ 1 µs a line, 5 %).
    gc.freeze()


def checked_chunk(lines: list[bytes]) -> tuple[Found, Problem]:
    """What the lines before the first bad one hold, and what is wrong with that one (None: none is):
    each line must be an event of the catalogue whose own fields pass its command's rules."""
    found, _, problem = _checked_lines(lines)
    return found, problem


def _checked_lines(lines: list[bytes], items: list[Facts | HistoryLine | None] | None = None
                   ) -> tuple[Found, list[HistoryLine | None], Problem]:
    """`checked_chunk`, with the checked lines themselves (`items`: what the compiled encoder made of each line
    already: its facts, or its HistoryLine for `field_facts` to check, or None)."""
    found, read = [], []
    for index, line in enumerate(lines):
        item = items[index] if items is not None else None
        if type(item) is tuple:  # its facts: the compiled path was sure the line passes `field_facts`
            found.append(item)
            read.append(None)
            continue
        try:
            checked = item or decoded_line(line)  # read_line's answer, in compiled code for export's own lines
            found.append(field_facts(checked, line))
        except Refusal as refusal:
            return found, read, (index, f"{checked.schema.name} of {checked.subject}, {refusal}", _created_by(line))
        except ValueError as error:
            return found, read, (index, str(error), _created_by(line))
        read.append(checked)
    return found, read, None


def encoded_chunk(keys: DerivedKeys, encoders: StateEncoders, lines: list[bytes], look_up: bool = True) -> Encoded:
    """One parse for both halves of the import: `checked_chunk` of the lines and, if none is bad, their
    stored events in COPY format (sealed with the keys `keys` holds or derives; the key table asked only if
    `look_up`, see `DerivedKeys.prepare`) and the key rows to write."""
    found, read, problem = _checked_lines(lines)
    if problem is not None:
        return packed(found), problem, b"", []  # the import is refused: nothing of it is written
    new_keys = keys.prepare(subjects_of_lines(read), look_up)
    data = copy_data([(line.subject, line.version, *encoders.stored(line)) for line in read])
    keys.forget()
    return packed(found), None, data, new_keys


def native_encoded_chunk(native: Any, keys: DerivedKeys, encoders: StateEncoders, lines: list[bytes],
                         look_up: bool = True) -> Encoded:
    """`encoded_chunk` with the per-line work in compiled code (`native_encoder`; the key table asked once for
    the chunk's records if `look_up`, as `DerivedKeys.prepare` does): the lines it is not sure of (None from it)
    are read, sealed and encoded by the Python path, and their rows put in their place."""
    items, data, ends, key_rows, left = native.encode(lines, keys.keys.secrets if look_up else None)
    if not left:  # the common case: every line export's own, its facts made in compiled code
        return packed(items), None, data, key_rows
    found, read, problem = _checked_lines(lines, items)
    if problem is not None:
        return packed(found), problem, b"", []
    if None not in items:  # every line read in compiled code (some facts by `field_facts`)
        return packed(found), None, data, key_rows
    fallback = {index: line for index, (line, item) in enumerate(zip(read, items)) if item is None and line}
    rows = {row[0]: row for row in key_rows}  # a record in both halves: one row, its person if either names it
    for row in keys.prepare(subjects_of_lines(fallback.values()), look_up):
        if row[2] is not None or row[0] not in rows:
            rows[row[0]] = row
    parts, start = [], 0
    for index, end in enumerate(ends):
        line = fallback.get(index)
        parts.append(data[start:end] if line is None else copy_data([(line.subject, line.version,
                                                                       *encoders.stored(line))]))
        start = end
    keys.forget()
    return packed(found), None, b"".join(parts), list(rows.values())


def packed(found: Found) -> bytes:
    """A chunk's Facts as `marshal` writes them (`unpacked` reads them back): 0.54 + 0.53 µs a line against
    pickle's 0.83 + 1.07, and the parent, which reads every line's, is the import's serial part. Facts are
    plain values (str, int, None, bool, tuples, lists), which marshal gives back as they were
    (`tests/unit/services/history/test_import_workers.py`)."""
    return marshal.dumps(found)


def unpacked(data: bytes) -> Found:
    return marshal.loads(data)  # noqa: S302 - bytes this import's own workers wrote


def _created_by(line: bytes) -> int | None:
    """The aggregate a bad line would have created, if it says (lines waiting for it are not at fault)."""
    try:
        record = orjson.loads(line)
        if issubclass(SCHEMAS[record["type"]].cls, CrmAggregate.Created):
            return UUID(canonical_uuid(record["subject"])).int
    except (ValueError, KeyError, TypeError):
        pass
    return None


def stored_rows(keys: KeyStore, encoders: StateEncoders, lines: list[bytes]) -> list[Row]:
    """The stored events of checked lines; their data subjects get their keys first (one round trip, as
    `CrmApplication.save_new` does) and leave the key cache after (it would grow with every person)."""
    checked = [reread_line(line) for line in lines]
    subjects = subjects_of_lines(checked)  # each record's key, bound to its person where the line names them
    keys.ensure(subjects)
    rows = [(line.subject, line.version, *encoders.stored(line)) for line in checked]
    keys.evict(subjects)
    return rows


def copy_data(rows: list[Row]) -> bytes:
    """Rows in PostgreSQL's binary COPY format (without the header and trailer)."""
    start, length, topics = _ROW_START.pack, _LENGTH.pack, _encoded_topics
    parts: list[bytes] = []
    for subject, version, topic, state in rows:
        encoded_topic = topics.get(topic) or topics.setdefault(topic, topic.encode())
        parts += (start(4, 16, bytes.fromhex(subject.replace("-", "")), 8, version, len(encoded_topic)),
                  encoded_topic, length(len(state)), state)
    return b"".join(parts)


def copy_chunk(lines: list[bytes]) -> bytes:
    """In a worker: `copy_data` of the chunk's stored rows."""
    assert _app is not None and _encoders is not None, "not a worker started by ImportWorkers"
    return copy_data(stored_rows(_app.keys, _encoders, lines))


def encoded_in_worker(lines: list[bytes], look_up: bool = True) -> Encoded:
    """In a worker: `encoded_chunk` with the import's keys."""
    assert _derived is not None and _encoders is not None, "not a worker started by ImportWorkers with a secret"
    if _native is not None:
        return native_encoded_chunk(_native, _derived, _encoders, lines, look_up)
    return encoded_chunk(_derived, _encoders, lines, look_up)


class ImportWorkers:
    """`jobs` spawned processes, each with its own application on the log being imported into (and the
    import's secret for `derived_keys`, when it is done in one pass)."""

    def __init__(self, url: str, jobs: int, recorded: datetime, secret: bytes | None = None) -> None:
        self._pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start, initargs=(url, recorded, secret))
        self._ahead = AHEAD * jobs
        if secret is not None:
            log.info("import workers: per-line work in %s code", worker_path())

    def ordered(self, work: Callable[[list[bytes]], T], chunks: Iterable[C]) -> Iterator[tuple[C, T]]:
        """Each chunk with `work` of its lines, in the chunks' order, a bounded number of chunks in flight."""
        pending: deque[tuple[C, Future[T]]] = deque()
        for chunk in chunks:
            pending.append((chunk, self._pool.submit(work, chunk.lines)))
            if len(pending) >= self._ahead:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> ImportWorkers:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
