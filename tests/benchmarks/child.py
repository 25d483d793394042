"""Measured operations in a process of their own, so that peak RSS belongs to that one operation.

    python -m tests.benchmarks.child ingest URL FILE BATCH   # `crm import`'s code path
    python -m tests.benchmarks.child rebuild URL [JOBS]      # rebuild of every read model (JOBS: one per core)
    python -m tests.benchmarks.child csv_import URL MAPPING  # `crm import MAPPING.toml`'s code path
    python -m tests.benchmarks.child raw_import URL FILE     # `crm import FILE.jsonl` with its defaults

`ingest` and `rebuild` print one JSON object: events, seconds, start_rss_mb, peak_rss_mb (`ingest` also
cpu_seconds: its own and its workers', also apart, and its PostgreSQL backends' where the server runs here);
`csv_import` and `raw_import` print events, seconds and peak_rss_mb (this process) and workers_peak_rss_mb
(the largest worker's, 0 without workers), `csv_import` also rows, plan_seconds, write_seconds,
plan_peak_rss_mb and the events per type.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg

from services.application import CrmApplication
from services.history.importer import import_history, worker_count
from services.projection_runtime.parallel_rebuild import default_jobs, rebuild_in_parallel
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.benchmarks.writers import process_cpu


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB: VmHWM (ru_maxrss would count the parent's
    peak from before the exec)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def ingest(url: str, file: str, batch: str) -> dict[str, Any]:
    """`crm import`'s code path with one worker process per core, whatever the file's size (so that 10% and
    all of a history compare). Peak RSS counts this process plus, for each worker, the largest worker's peak
    (an upper bound)."""
    app = CrmApplication(database_from_url(url))
    jobs = worker_count(app, Path(file), default_jobs())
    start_rss, started, cpu, own = rss_mb(), time.perf_counter(), _cpu_seconds(), _own_cpu_seconds()
    with ServerCpu(url) as server:
        events = import_history(app, Path(file), int(batch), jobs=jobs or 1)
    workers_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    cpu, own = _cpu_seconds() - cpu, _own_cpu_seconds() - own
    return {"events": events, "seconds": time.perf_counter() - started, "start_rss_mb": start_rss,
            "peak_rss_mb": rss_mb() + jobs * workers_mb, "jobs": jobs, "cpu_seconds": cpu,
            "parent_cpu_seconds": own, "workers_cpu_seconds": cpu - own, "server_cpu_seconds": server.seconds}


def _own_cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


class ServerCpu:
    """CPU seconds of the PostgreSQL backends of `url`'s database while the block runs (local server, /proc;
    None elsewhere): polled every half second on one open connection (a connection each time would cost this
    process its authentication, ≈ ms of CPU), as the workers' sessions end before the import does (the last
    half second of theirs may be missed)."""

    def __init__(self, url: str) -> None:
        self._connection = psycopg.connect(url, autocommit=True)
        self._seen: dict[int, float] = {}
        self._done = threading.Event()
        self._before = process_cpu(self._backends())
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self.seconds: float | None = None

    def _backends(self) -> list[int]:
        return [row[0] for row in self._connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]

    def _poll(self) -> None:
        while not self._done.wait(0.5):
            self._seen.update(process_cpu(self._backends()))

    def __enter__(self) -> ServerCpu:
        self._poller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._poller.join()
        self._seen.update(process_cpu(self._backends()))
        self._connection.close()
        if self._seen:
            self.seconds = sum(spent - self._before.get(pid, 0.0) for pid, spent in self._seen.items())


def _cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (the import's workers): what a loaded
    machine inflates far less than wall time."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def rebuild(url: str, jobs_given: str = "") -> dict[str, Any]:
    """`crm projections rebuild`'s code path: one worker process per core (or `jobs_given`), each over a share
    of the read models. Peak RSS counts this process plus, for each worker, the largest worker's peak (an upper
    bound)."""
    app = CrmApplication(database_from_url(url))
    store = ReadModelStore(app.database)
    jobs = int(jobs_given) if jobs_given else default_jobs()
    start_rss, started = rss_mb(), time.perf_counter()
    rebuild_in_parallel(app, store, [], jobs)
    workers_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"events": app.event_count(), "seconds": time.perf_counter() - started, "start_rss_mb": start_rss,
            "peak_rss_mb": rss_mb() + jobs * workers_mb, "jobs": jobs}


def workers_mb() -> float:
    """The largest peak RSS of this process's finished children (the import's workers), in MiB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def csv_import(url: str, mapping: str) -> dict[str, Any]:
    """`csv_importer.run_csv_import` as `crm import MAPPING.toml` calls it. Its write step
    (`csv_importer.write_events`, looked up when it is called) is wrapped to note when the plan ended."""
    from services.history.csv_import import csv_importer  # here: the ingest and rebuild children's RSS stays as it was

    app = CrmApplication(database_from_url(url))
    plan = csv_importer.mapping_for(Path(mapping))
    write, marks = csv_importer.write_events, {}

    def timed_write(app: CrmApplication, events: list[Any]) -> int:
        marks.update(plan_ended=time.perf_counter(), plan_peak_rss_mb=rss_mb())
        return write(app, events)

    csv_importer.write_events = timed_write  # type: ignore[assignment]
    started = time.perf_counter()
    report = csv_importer.run_csv_import(app, plan)
    ended = time.perf_counter()
    return {"rows": sum(report.rows_read.values()), "events": report.written, "seconds": ended - started,
            "plan_seconds": marks["plan_ended"] - started, "write_seconds": ended - marks["plan_ended"],
            "plan_peak_rss_mb": marks["plan_peak_rss_mb"], "peak_rss_mb": rss_mb(),
            "workers_peak_rss_mb": workers_mb(), "by_type": report.events}


def raw_import(url: str, file: str) -> dict[str, Any]:
    """`import_history` with `crm import FILE.jsonl`'s defaults (batch, workers by the file's size)."""
    app = CrmApplication(database_from_url(url))
    started = time.perf_counter()
    events = import_history(app, Path(file))
    return {"events": events, "seconds": time.perf_counter() - started, "peak_rss_mb": rss_mb(),
            "workers_peak_rss_mb": workers_mb(), "jobs": worker_count(app, Path(file))}


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    result = {"ingest": ingest, "rebuild": rebuild, "csv_import": csv_import, "raw_import": raw_import}[command](
        *arguments)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
