"""Bulk ingest: `crm import`'s code path vs raw COPY of the same rows (the physical limit) and vs the naive path."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import psycopg

from services.application import CrmApplication
from services.history.event_lines import numbered_lines, parse_event
from services.history.import_workers import worker_path
from services.keys.sealing import subjects_of
from services.settings import database_from_url
from tests.benchmarks.harness import Bench, Metric, ratio
from tests.benchmarks.writers import process_cpu

TARGET = 0.5  # of COPY's rate


def copy_baseline(bench: Bench) -> tuple[float, float, float | None]:
    """Events/s, seconds and its server process's CPU seconds (where the server runs here, /proc; else None)
    of one binary COPY of the imported rows into an identical, empty events table."""
    table = bench.app.recorder.events_table_name  # type: ignore[attr-defined]
    dump = bench.workdir / "stored_events.copy"
    with psycopg.connect(bench.main_url) as source, dump.open("wb") as out, source.cursor().copy(
        f"COPY (SELECT originator_id, originator_version, topic, state FROM {table} ORDER BY notification_id) "
        "TO STDOUT (FORMAT BINARY)"
    ) as copy:
        for chunk in copy:
            out.write(chunk)
    target_url = bench.database()
    CrmApplication(database_from_url(target_url)).close()  # its owner made the same empty table, index and trigger
    with psycopg.connect(target_url) as target, dump.open("rb") as rows:
        backend = target.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        server = process_cpu([backend])
        started = time.perf_counter()
        with target.cursor().copy(f"COPY {table} (originator_id, originator_version, topic, state) "
                                  "FROM STDIN (FORMAT BINARY)") as copy:
            while chunk := rows.read(1 << 20):
                copy.write(chunk)
        target.commit()
        seconds = time.perf_counter() - started
        server = {pid: spent - server[pid] for pid, spent in process_cpu([backend]).items()}
    dump.unlink()
    return bench.history.events / seconds, seconds, server.get(backend)


def naive_ingest(bench: Bench) -> dict[str, Any]:
    """One `app.save` (one transaction) per aggregate, on the first events of the history."""
    recorded = datetime.now(timezone.utc)
    by_aggregate: dict[UUID, list[Any]] = {}
    with bench.history.path.open("rb") as source:
        for _, (_, line) in zip(range(bench.plan.naive_ingest_sample), numbered_lines(source)):
            event = parse_event(line, recorded)
            by_aggregate.setdefault(event.originator_id, []).append(event)
    app = CrmApplication(database_from_url(bench.database()))
    started = time.perf_counter()
    for events in by_aggregate.values():  # as CrmApplication.save_new does: the subject's key, then the save
        app.keys.ensure(subjects_of(events))
        app.save(*events)
    seconds = time.perf_counter() - started
    app.close()
    sample = sum(len(events) for events in by_aggregate.values())
    return {"sample_events": sample, "sample_aggregates": len(by_aggregate), "events_per_s": sample / seconds}


def measure(bench: Bench) -> list[Metric]:
    events, seconds = bench.ingest["events"], bench.ingest["seconds"]
    rate = events / seconds
    copy_rate, copy_seconds, copy_cpu = copy_baseline(bench)
    naive = naive_ingest(bench)
    share = ratio(rate, copy_rate)
    return [Metric(
        "bulk_ingest", round(rate), "events/s",
        "raw PostgreSQL binary COPY of the same stored-event rows into an identical empty table, one transaction",
        round(copy_rate), share, f"≥ {TARGET:.0%} of COPY", share is not None and share >= TARGET,
        {"events": events, "seconds": round(seconds, 2), "batch": bench.plan.batch,
         "copy_seconds": round(copy_seconds, 2), "naive_events_per_s": round(naive["events_per_s"]),
         "naive_extrapolated_seconds": round(events / naive["events_per_s"], 1),
         "speedup_vs_naive": ratio(rate, naive["events_per_s"]),
         "naive": f"one app.save (one transaction) per aggregate, measured on the first {naive['sample_events']:,} "
                  f"events ({naive['sample_aggregates']:,} aggregates) of the history and extrapolated",
         "cpu_us_per_event": round(bench.ingest["cpu_seconds"] / events * 1e6, 1)
         if "cpu_seconds" in bench.ingest else None,
         # Load-independent: CPU µs per event of the importing process, its workers, the import's PostgreSQL
         # backends, and the raw COPY's backend (the last two only where the server runs on this machine).
         "cpu_us_per_event_by_process": {
             name: round(bench.ingest[key] / events * 1e6, 2) if bench.ingest.get(key) is not None else None
             for name, key in (("parent", "parent_cpu_seconds"), ("workers", "workers_cpu_seconds"),
                               ("server", "server_cpu_seconds"))},
         "copy_server_cpu_us_per_event": round(copy_cpu / events * 1e6, 2) if copy_cpu is not None else None,
         "load_average": round(os.getloadavg()[0], 1),
         # the workers' per-line work: "native" (the crm_native Rust extension) or "python" (not built, or
         # CRM_IMPORT_NATIVE=0)
         "worker_path": worker_path(),
         "code_path": "one pass: worker processes (one per core, crm import's default for files of 20 MiB or "
                      "more) parse each line once, check its fields, encode the mapper's stored state straight "
                      "from it (sealing personal data with keys derived for the import) in binary COPY format; "
                      "the importing process runs the in-order rules and streams the chunks into one "
                      "transaction under the table lock (a COPY per batch, the new keys staged and moved into "
                      "the key table at the end), committed once the whole file passed; in a child process"},
    )]
