"""`crm import` into a sharded installation: the history checked whole, then written shard by shard.

There is no transaction spanning shards, so an import is made safe to run again instead of atomic:

1. route (one pass, `orjson` only): each line goes to the shard of its record's home partition — the
   partition its own id gives (`partition_of(subject)`, the router's `shard_map`); a record of a legacy
   export whose id predates the partition rule (a deal outside its customer's partition) simply lands where
   its own id says, as every later command on it is routed. Reference lines (pipelines, vocabularies, rates,
   campaigns: `is_reference`) go to the default shard, and reach the others by the router's reference
   copying (`ShardedApplication.sync`: same ids, versions and content), before their own records.
2. what is there already: each shard's part is written in ONE transaction, so it is in the shard whole or
   not at all. A part whose first and last events (id, version, type) are both in its shard was written by
   an earlier run of this import, which stopped before the rest: it is skipped (`ShardPart.done`); one of
   the two without the other means the shard holds other history under these ids, and the file is refused.
3. check: the lines of the parts still to write (the others blanked, so refusals keep the file's line
   numbers) pass the single-database check (`importer.check_history`) against every shard's log
   (`ShardedLog`: a record looked up in its shard, reference data in the default shard). A bad line → nothing
   written, as with one database.
4. write: the default shard's part, the reference copy, then every other shard's part, each with the
   single-database writer (`importer.HistoryWriter`: COPY on PostgreSQL, its own gap-free order).

A run killed between two shards' commits, then run again, finds the written parts (step 2) and writes the
rest; nothing twice. The CSV import needs none of step 2: its plan compares each record with its shard's
log (`csv_import.import_session.Session.reconcile`) and leaves out what is there.
"""

from __future__ import annotations

import logging
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import orjson
from eventsourcing.utils import get_topic

from domain.partitions import is_reference, partition_of
from services.history import importer
from services.history.csv_import import csv_importer
from services.history.csv_import.import_report import ImportReport
from services.history.csv_import.mapping import Mapping
from services.history.event_lines import SCHEMAS, numbered_lines
from services.sharding import reference
from services.sharding.router import ShardedApplication

log = logging.getLogger(__name__)
Key = tuple[str, int, str]  # (subject, version, type) of a line
after_shard_written: Callable[[int], None] = lambda shard: None  # a test hook: called after each shard's commit


class ShardsDisagree(importer.ImportRefused):
    """A shard holds part of what the file would write there: not this import's earlier run."""


@dataclass
class ShardPart:
    """One shard's share of the file."""

    shard: int
    events: int = 0
    first: Key | None = None
    last: Key | None = None
    lines: tuple[int, int] = (0, 0)  # the file's line numbers of `first` and `last`
    done: bool = False  # written by an earlier run of this import
    path: Path | None = None  # its lines, while it is being written
    checksums: list[int] = field(default_factory=list)

    def describe(self, dry_run: bool) -> str:
        if not self.events:
            return f"shard {self.shard}: nothing to write"
        if self.done:
            return f"shard {self.shard}: {self.events:,} events already imported by an earlier run; left as they are"
        return f"shard {self.shard}: {self.events:,} events {'would be written' if dry_run else 'written'}"


@dataclass
class ShardedImport:
    """What an import over shards did (or, in a dry run, would do)."""

    parts: list[ShardPart]
    dry_run: bool
    written: int = 0
    reference_copied: list[int] = field(default_factory=list)  # events copied to each shard after the default's

    @property
    def resumed(self) -> bool:
        return any(p.done for p in self.parts) and any(not p.done and p.events for p in self.parts)

    def lines(self) -> list[str]:
        out = [part.describe(self.dry_run) for part in self.parts]
        if any(self.reference_copied):
            out.append("reference data copied to the other shards: "
                       + ", ".join(f"shard {i}: {n:,}" for i, n in enumerate(self.reference_copied) if i))
        if self.resumed:
            out.append("an earlier run of this import stopped after writing some shards: "
                       + ("the rest would be written" if self.dry_run else "the rest was written, nothing twice"))
        elif all(p.done or not p.events for p in self.parts) and any(p.done for p in self.parts):
            out.append("this file was imported already: nothing to write")
        return out


# --- the log as the checks and the CSV plan read it, over shards ------------------------------------------


class ShardedLog:
    """What `check_history` and the CSV import's plan read of "the log", answered by the shards: a record
    from its home partition's shard, reference data from the default shard (which decides its versions)."""

    def __init__(self, crm: ShardedApplication) -> None:
        self.crm = crm
        self.repository, self.events = _Repository(self), _Events(self)

    def event_count(self) -> int:
        return self.crm.event_count()

    def vocabularies(self, fresh: bool = False) -> Any:
        return self.crm.vocabularies(fresh)

    def get(self, aggregate_type: Any, aggregate_id: UUID) -> Any:
        return self.crm.get(aggregate_type, aggregate_id)

    def read_log(self, topics: Any = (), batch: int = 2000, start: int = 1) -> Any:
        return self.crm.read_log(topics, batch, start)  # every event once (the CSV plan's deal and ticket ids)

    def _held(self, candidates: list[UUID]) -> UUID | None:
        """The first of some ids any shard holds (the check's external-id uniqueness: `rules.log_holder`)."""
        return self.crm._held_on_shards(candidates)

    def holder(self, aggregate_id: UUID) -> Any:
        """The application whose log is the truth about this aggregate."""
        home = self.crm.app_of(aggregate_id)
        first = list(home.recorder.select_events(aggregate_id, limit=1))
        if not first or _is_reference_topic(first[0].topic):
            return self.crm.default
        return home


class _Repository:
    def __init__(self, shared: ShardedLog) -> None:
        self._log = shared

    def get(self, aggregate_id: UUID) -> Any:
        return self._log.holder(aggregate_id).repository.get(aggregate_id)

    def __contains__(self, aggregate_id: UUID) -> bool:
        return aggregate_id in self._log.holder(aggregate_id).repository


class _Events:
    def __init__(self, shared: ShardedLog) -> None:
        self._log = shared

    def get(self, aggregate_id: UUID, **kwargs: Any) -> Any:
        return self._log.holder(aggregate_id).events.get(aggregate_id, **kwargs)


def _is_reference_topic(topic: str) -> bool:
    return is_reference(topic.rpartition(":")[2].partition(".")[0])  # "domain.deal:Deal.Opened" → Deal


def _aggregate_of(type_name: str) -> str:
    return type_name.split(".")[1] if type_name.count(".") >= 2 else ""  # "crm.Deal.Opened" → Deal


# --- 1. route, 2. what is there ----------------------------------------------------------------------------


def _routed(crm: ShardedApplication, source: IO[bytes]) -> Iterator[tuple[int, bytes, int, Key | None]]:
    """(line number, line, shard, key) of every non-blank line; a line that cannot be read goes to the default
    shard (the check refuses it)."""
    for number, line in numbered_lines(source):
        try:
            record = orjson.loads(line)
            key: Key | None = (str(record["subject"]), int(record["version"]), str(record["type"]))
            aggregate = _aggregate_of(key[2])  # type: ignore[index]
            shard = 0 if is_reference(aggregate) else crm.shard_of(partition_of(UUID(key[0])))  # type: ignore[index]
        except (ValueError, KeyError, TypeError, AttributeError):
            key, shard = None, 0
        yield number, line, shard, key


def plan_parts(crm: ShardedApplication, path: Path) -> list[ShardPart]:
    """Each shard's share of the file, and whether an earlier run wrote it (see the module docstring)."""
    parts = [ShardPart(i) for i in range(len(crm.apps))]
    with path.open("rb") as source:
        for number, _, shard, key in _routed(crm, source):
            part = parts[shard]
            part.events += 1
            if part.events == 1:
                part.first, part.lines = key, (number, number)
            part.last, part.lines = key, (part.lines[0], number)
    for part in parts:
        part.done = part.events > 0 and _written_before(crm, part)
    return parts


def _written_before(crm: ShardedApplication, part: ShardPart) -> bool:
    app = crm.apps[part.shard]
    held = [key is not None and _holds(app, key) for key in (part.first, part.last)]
    if held[0] != held[1]:
        which, line = (part.first, part.lines[0]) if held[0] else (part.last, part.lines[1])
        assert which is not None
        raise ShardsDisagree(line, f"shard {part.shard} already holds this line's event ({which[2]} version "
                                   f"{which[1]} of {which[0]}) but not the rest of what this file writes there "
                                   "(an earlier run writes a shard's part whole or not at all): the shard holds "
                                   "other history under these ids")
    return held[0]


def _holds(app: Any, key: Key) -> bool:
    subject, version, type_name = key
    schema = SCHEMAS.get(type_name)
    found = list(app.recorder.select_events(UUID(subject), gt=version - 1, lte=version))
    return bool(found) and (schema is None or found[0].topic == get_topic(schema.cls))


# --- 3. check, 4. write ------------------------------------------------------------------------------------


@contextmanager
def _split(crm: ShardedApplication, path: Path, parts: list[ShardPart]) -> Iterator[Path]:
    """The file to check (lines of parts already written blanked) and each part still to write in a file of its
    own (with the CRC of each chunk, as the writer wants), in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="crm-shard-import-") as folder:
        checked = Path(folder) / "check.jsonl"
        for part in parts:
            part.path = None if part.done or not part.events else Path(folder) / f"shard{part.shard}.jsonl"
        outs = {p.shard: p.path.open("wb") for p in parts if p.path is not None}
        with path.open("rb") as source, checked.open("wb") as check:
            line_number = 0
            for number, line, shard, _ in _routed(crm, source):
                check.write(b"\n" * (number - line_number - 1))  # blank lines keep the numbering
                line_number = number
                if shard in outs:
                    check.write(line if line.endswith(b"\n") else line + b"\n")
                    outs[shard].write(line if line.endswith(b"\n") else line + b"\n")
                else:
                    check.write(b"\n")
        for out in outs.values():
            out.close()
        for part in parts:
            if part.path is not None:
                part.checksums = _checksums(part.path, part.events)
        yield checked


def _checksums(path: Path, events: int) -> list[int]:
    with path.open("rb") as source:
        return [zlib.crc32(b"".join(chunk.lines)) for chunk in importer.chunks(source, max(events, 1))]


def import_sharded_history(crm: ShardedApplication, path: Path, batch: int = importer.DEFAULT_BATCH,
                           on_progress: importer.Progress = lambda phase, done, total: None,
                           dry_run: bool = False) -> ShardedImport:
    """Check the file against every shard's log, then write each shard's part in one transaction of that
    shard (the default shard first, then the reference copy, then the others). Raises ImportRefused and writes
    nothing if a line is bad; a part an earlier run wrote is left as it is."""
    parts = plan_parts(crm, path)
    result = ShardedImport(parts, dry_run)
    with _split(crm, path, parts) as checked_path, checked_path.open("rb") as source:
        size = checked_path.stat().st_size
        importer.check_history(ShardedLog(crm), source, batch,  # type: ignore[arg-type]
                               lambda done: on_progress("checking", done, size))
        if dry_run:
            return result
        for part in parts:
            head = crm.apps[part.shard].event_count()
            if part.path is not None:
                result.written += _write_part(crm, part, on_progress)
                after_shard_written(part.shard)
            if part.shard == 0:  # reference data before the other shards' records
                result.reference_copied = _copy_reference(crm, head if part.path is not None else None)
    log.info("import over %d shards: %d events written (%s)", len(parts), result.written,
             "; ".join(result.lines()), extra={"component": "import", "action": "stop", "cause": None,
                                              "total": result.written})
    return result


def _copy_reference(crm: ShardedApplication, written_after: int | None) -> list[int]:
    """Copy the reference events the default shard's part just wrote (read back in one pass after position
    `written_after`, handed to `copy_aggregates` as just saved: without them it reads each aggregate back, one
    query each — 1,126 queries, 1.1 s of a 2.9 s import of 9,641 events), then `sync` whatever else a shard
    lacks (a run that died before copying: no part written now)."""
    copied = [0] * len(crm.apps)
    if written_after is not None:
        saved = [event for _, event in crm.default.read_log(reference.reference_topics(), start=written_after + 1)]
        ids = list(dict.fromkeys(event.originator_id for event in saved))
        for shard, target in enumerate(crm.apps[1:], 1):
            copied[shard] = reference.copy_aggregates(crm.default, target, ids, saved=saved) if ids else 0
    return [a + b for a, b in zip(copied, crm.sync())]


def _write_part(crm: ShardedApplication, part: ShardPart, on_progress: importer.Progress) -> int:
    """One shard's part, in one transaction of that shard, by the single-database writer."""
    assert part.path is not None
    writer = importer.HistoryWriter(crm.apps[part.shard], max(part.events, 1))
    with part.path.open("rb") as source:
        return writer.write(source, importer.CheckedFile(part.events, part.checksums),
                            lambda done: on_progress(f"writing shard {part.shard}", done, part.events))


# --- the CSV import over shards -----------------------------------------------------------------------------


def run_sharded_csv_import(crm: ShardedApplication, mapping: Mapping, *, dry_run: bool = False,
                           rejects: Path | None = None) -> tuple[ImportReport, ShardedImport | None]:
    """`csv_importer.run_csv_import` over shards: planned against every shard's log (records already there are
    unchanged or extended, as with one database), written by `import_sharded_history`."""
    outcome: list[ShardedImport] = []

    def write(_: Any, events: list[Any]) -> int:
        with csv_importer.history_lines(events) as lines:
            outcome.append(import_sharded_history(crm, lines, max(importer.DEFAULT_BATCH, len(events)),
                                                  dry_run=dry_run))
        return outcome[-1].written

    shared_log = ShardedLog(crm)
    if not dry_run:
        report = csv_importer.run_csv_import(shared_log, mapping, rejects=rejects, write=write)  # type: ignore[arg-type]
        return report, (outcome[-1] if outcome else None)
    if rejects is not None:
        csv_importer.check_rejects_path(mapping, rejects)
    _, report, events = csv_importer.plan_import(shared_log, mapping)  # type: ignore[arg-type]
    if events and not report.refused:
        write(None, events)  # checked and counted per shard, not written
    return report, (outcome[-1] if outcome else None)
