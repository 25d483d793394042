"""Rebuild time against the number of threads and processes it may use, on the same log in the same run: the
bulk path (every read model with a fold) with DuckDB on 1 thread and on 2, and the handlers' rebuild of every
read model (`crm projections rebuild --jobs N`) in 1 process and in 2.

A log over several shards is not measured: the bulk path reads one log and refuses a sharded one, and the
handlers' local rebuild needs the one log of a single database too (`ShardedApplication` refuses it: sharded
read models are fed by `crm projections consume`, whose lag the `lag` group measures)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from services.bulk import duckdb_rebuild
from services.bulk.duckdb_rebuild import FOLDS, bulk_build
from tests.benchmarks.bulk import seconds_of
from tests.benchmarks.harness import Bench, Metric, log, ratio, run_child

LEVELS = (1, 2)  # this machine has 2 cores; the ratio is what carries to another one
SHARDS_NOT_MEASURED = ("a sharded log: the bulk path and the handlers' local rebuild both read one log and refuse "
                       "a sharded one (its read models are fed by `crm projections consume`)")


def metric_names() -> tuple[str, ...]:
    return ("bulk_rebuild_duckdb_threads", "projection_rebuild_processes")


@contextmanager
def duckdb_threads(threads: int) -> Iterator[None]:
    """Every DuckDB connection the bulk path opens meanwhile limited to `threads` (its default: one per core)."""
    connect = duckdb_rebuild._connect

    def limited() -> duckdb.DuckDBPyConnection:
        con = connect()
        con.execute(f"SET threads = {int(threads)}")
        return con

    duckdb_rebuild._connect = limited  # type: ignore[assignment]
    try:
        yield
    finally:
        duckdb_rebuild._connect = connect  # type: ignore[assignment]


def _bulk_threads(bench: Bench) -> Metric:
    events, names = bench.app.event_count(), list(FOLDS)
    seconds = {}
    for threads in LEVELS:
        log(f"bulk rebuild of {', '.join(names)} with DuckDB on {threads} thread(s)")
        with duckdb_threads(threads):
            seconds[threads] = seconds_of(lambda: bulk_build(bench.app, bench.store, names))
    one, two = events / seconds[1], events / seconds[2]
    return Metric("bulk_rebuild_duckdb_threads", round(two), "events/s",
                  "the same bulk rebuild with DuckDB on 1 thread (SET threads = 1)", round(one), ratio(two, one),
                  "none (informational)", None,
                  {"events": events, "read_models": names, "seconds": {str(t): round(s, 2) for t, s in seconds.items()},
                   "events_per_s_per_read_model": {str(t): round(events * len(names) / s) for t, s in seconds.items()},
                   "cores": os.cpu_count(), "load_average": round(os.getloadavg()[0], 1),
                   "not_measured": SHARDS_NOT_MEASURED})


def _handler_processes(bench: Bench) -> Metric:
    runs = {}
    for jobs in LEVELS:
        log(f"rebuilding every read model by the handlers in {jobs} process(es)")
        given = bench.rebuild if bench.rebuild.get("jobs") == jobs else run_child("rebuild", bench.main_url, str(jobs))
        runs[jobs] = given
    events = runs[1]["events"]
    one, two = events / runs[1]["seconds"], events / runs[2]["seconds"]
    return Metric("projection_rebuild_processes", round(two), "events/s",
                  "the same rebuild (crm projections rebuild --jobs 1) in one process", round(one), ratio(two, one),
                  "none (informational)", None,
                  {"events": events, "read_models": "all (services.projection_runtime.registry.READ_MODELS)",
                   "seconds": {str(j): round(r["seconds"], 2) for j, r in runs.items()},
                   "peak_rss_mb": {str(j): round(r["peak_rss_mb"], 1) for j, r in runs.items()},
                   "cores": os.cpu_count(), "load_average": round(os.getloadavg()[0], 1),
                   "not_measured": SHARDS_NOT_MEASURED})


def measure(bench: Bench) -> list[Metric]:
    return [_bulk_threads(bench), _handler_processes(bench)]
