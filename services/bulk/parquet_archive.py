"""`crm export --parquet DIR`: the flat log (`services.bulk.log_reader`) as Parquet files that Spark, DuckDB or
pandas read without the CRM: the archive of a history that outgrew one machine.

Layout (Hive style, so that every engine finds the two keys without a catalogue and a query on a month or a
partition reads only its files):

    DIR/month=2026-11/partition=17/part-3-0.parquet     events recorded in Nov 2026 (UTC) whose home is 17
    DIR/month=2026-11/partition=-1/part-3-0.parquet     reference data (pipelines, vocabularies, rates)
    DIR/_crm_archive.json                               what has been exported: each shard's head

`month` is the month the event was *recorded* in, not its business time: an event recorded today always lands in
this month's directories, so a month's files only grow by new files and never need rewriting (an import keeps
its events' recorded times, and then adds files to old months: nothing is rewritten either). Reference data
keeps the log's own partition -1 under each month: one key for every row, one reader for everything.

Export again into the same DIR: only the events after each shard's recorded head are read and written, as new
files `part-N-*.parquet` of export N (positions are gap-free in commit order per shard, README "Guarantees",
so nothing committed later can land below a head). An export writes under `DIR/_export-N/` (names starting
with `_` are ignored by Spark, pyarrow and DuckDB's hive reader) and moves its files into place before the
manifest records it; a crashed export's leftovers are deleted by the next one, which exports them again.
"""

from __future__ import annotations

import fcntl
import json
import queue
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from services.bulk.log_reader import read_log
from services.settings import Database

LOCK_FILE = "_crm_archive.lock"  # held by the export running (`_only_export`)
MANIFEST = "_crm_archive.json"
FORMAT = "crm-log-archive/1"
STAGING = "_export-"
KEYS = pa.schema([("month", pa.string()), ("partition", pa.int16())])
PARTITIONING = ds.partitioning(KEYS, flavor="hive")
# A batch of the log spans a few months × 65 partitions; pyarrow's default limits (1024 directories per
# batch, 1024 open files) would split a large export's files or refuse a batch.
MAX_DIRECTORIES = 1 << 16
ROWS_PER_GROUP = 128 * 1024  # Parquet row groups of ≈ 128k events (≈ 30 MB of state) read well in Spark tasks


class ArchiveRefused(ValueError):
    """DIR is not an archive this log can be exported into (its sentence says why)."""


@dataclass
class Manifest:
    """What DIR holds: the head exported of each shard (in the order CRM_SHARD_URLS names them), one entry per
    export."""

    heads: list[int]
    exports: list[dict[str, object]] = field(default_factory=list)
    format: str = FORMAT

    @property
    def number(self) -> int:
        return len(self.exports)


def read_manifest(directory: Path, shards: int) -> Manifest:
    """The manifest of DIR; a new one if DIR is missing or empty; ArchiveRefused for anything else."""
    path = directory / MANIFEST
    if not path.exists():
        if directory.exists() and (not directory.is_dir() or any(map(_not_ours, directory.iterdir()))):
            raise ArchiveRefused(f"{directory} is not empty and holds no {MANIFEST}: export into an empty or new "
                                 "directory, or into an archive written before to add what is new")
        return Manifest(heads=[0] * shards)
    found = json.loads(path.read_text())
    if found.get("format") != FORMAT or len(found.get("heads", ())) != shards:
        raise ArchiveRefused(f"{path} is an archive of {len(found.get('heads', ()))} shard(s) in format "
                             f"{found.get('format')!r}; this log has {shards} shard(s) ({FORMAT}): export into a new "
                             "directory")
    return Manifest(heads=found["heads"], exports=found["exports"])


def _not_ours(path: Path) -> bool:
    """Anything but what a first export leaves before its manifest: the lock, or a crashed one's staging."""
    return path.name != LOCK_FILE and not path.name.startswith(STAGING)


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Replace the manifest in one rename: a reader sees the old one or the new one."""
    temporary = directory / f"{MANIFEST}.tmp"
    temporary.write_text(json.dumps(asdict(manifest), indent=1) + "\n")
    temporary.replace(directory / MANIFEST)


def with_month(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with its `month` key ("YYYY-MM" of `recorded_at` in UTC) appended."""
    recorded = batch.column("recorded_at").cast(pa.timestamp("us", tz="UTC"))
    return batch.append_column("month", pc.strftime(recorded, format="%Y-%m"))


def clear_leftovers(directory: Path, manifest: Manifest) -> None:
    """Delete what a crashed export left: its staging directory and files of exports the manifest lacks."""
    for staging in directory.glob(f"{STAGING}*"):
        shutil.rmtree(staging)
    for file in directory.glob("month=*/partition=*/part-*.parquet"):
        if int(file.name.split("-")[1]) >= manifest.number + 1:
            file.unlink()


def write_export(directory: Path, number: int, batches: Iterable[pa.RecordBatch]) -> int:
    """Write `batches` (the flat log's rows) as export `number` of DIR; returns the number of events written."""
    staging = directory / f"{STAGING}{number}"
    counted = _Counted(batches)
    first = counted.peek()
    if first is None:
        return 0
    fed_from_this_thread(lambda source: ds.write_dataset(
        source, staging, schema=with_month(first).schema, format="parquet", partitioning=PARTITIONING,
        basename_template=f"part-{number}-{{i}}.parquet", max_partitions=MAX_DIRECTORIES,
        max_open_files=MAX_DIRECTORIES, max_rows_per_group=ROWS_PER_GROUP,
        min_rows_per_group=min(ROWS_PER_GROUP, 1 << 14), existing_data_behavior="error"), counted)
    for file in sorted(staging.glob("month=*/partition=*/*.parquet")):
        target = directory / file.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        file.replace(target)
    shutil.rmtree(staging)
    return counted.rows


def fed_from_this_thread(write: Callable[[Iterable[pa.RecordBatch]], None], batches: Iterable[pa.RecordBatch]) -> None:
    """Run `write` in a worker thread over `batches` read by this one, two batches in flight at most: pyarrow's
    writer pulls its input from threads of its own (even with `use_threads=False`), and a log read from SQLite
    may only be read by the thread that opened it."""
    handoff: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=2)
    failures: list[BaseException] = []

    def source() -> Iterator[pa.RecordBatch]:
        while (batch := handoff.get()) is not None:
            yield batch

    def run() -> None:
        try:
            write(source())
        except BaseException as error:  # noqa: BLE001 - raised again in the reading thread
            failures.append(error)
    worker = threading.Thread(target=run, name="parquet-export", daemon=True)
    worker.start()
    for batch in _then_end(batches):
        if not _handed(handoff, batch, worker):
            break  # the writer failed: read no further
    worker.join()
    if failures:
        raise failures[0]


def _handed(handoff: queue.Queue[pa.RecordBatch | None], batch: pa.RecordBatch | None,
            worker: threading.Thread) -> bool:
    """Put `batch` in the hand-off once there is room; False if the worker has ended (it takes nothing more)."""
    while worker.is_alive():
        try:
            handoff.put(batch, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


def _then_end(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch | None]:
    yield from batches
    yield None


class _Counted:
    """The batches with their month added, counted as pyarrow consumes them; the first one looked at ahead (its
    schema is the dataset's)."""

    def __init__(self, batches: Iterable[pa.RecordBatch]) -> None:
        self._batches = iter(batches)
        self._first: pa.RecordBatch | None = None
        self.rows = 0

    def peek(self) -> pa.RecordBatch | None:
        self._first = next((b for b in self._batches if b.num_rows), None)
        return self._first

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self._first is not None:
            yield self._counted(self._first)
        for batch in self._batches:
            if batch.num_rows:
                yield self._counted(batch)

    def _counted(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.rows += batch.num_rows
        return with_month(batch)


def record_export(directory: Path, manifest: Manifest, heads: list[int], events: int) -> Manifest:
    """The manifest after an export that brought each shard to `heads` with `events` new events, written."""
    manifest.exports.append({"number": manifest.number + 1, "events": events, "heads": heads,
                             "at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    manifest.heads = heads
    write_manifest(directory, manifest)
    return manifest


def export_archive(databases: Sequence[Database], directory: Path) -> tuple[int, Manifest]:
    """Export what DIR lacks of the log of `databases` (its shards, the default first): (events written, the
    manifest now). Each shard is read in one snapshot from its recorded head on; reference data from the
    default shard only (the others hold copies of it)."""
    manifest = read_manifest(directory, len(databases))
    directory.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        stack.enter_context(_only_export(directory))
        manifest = read_manifest(directory, len(databases))  # again: one that ended while this one waited
        clear_leftovers(directory, manifest)
        reads = [stack.enter_context(read_log(database, start=head))
                 for database, head in zip(databases, manifest.heads)]
        events = write_export(directory, manifest.number + 1,
                              _all_shards([read.batches for read in reads]))
        heads = [read.head for read in reads]
    if events == 0 and heads == manifest.heads:
        return 0, manifest
    return events, record_export(directory, manifest, heads, events)


@contextmanager
def _only_export(directory: Path) -> Iterator[None]:
    """One export into DIR at a time: two would both take number N, and each one's `clear_leftovers` would
    delete the other's `_export-N` while it writes. An advisory lock (flock) on a file in DIR, released by
    the kernel when the process ends, however it ends."""
    with open(directory / LOCK_FILE, "a") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArchiveRefused(f"another export into {directory} is running: wait for it, then export again "
                                 "(it adds only what the archive lacks)") from None
        yield


def _all_shards(shards: list[Iterator[pa.RecordBatch]]) -> Iterator[pa.RecordBatch]:
    yield from shards[0]
    for batches in shards[1:]:
        for batch in batches:
            yield batch.filter(pc.not_equal(batch.column("partition"), -1))
