"""Segments rebuild where one customer holds thousands of deals vs the funnel's rebuild of the same log.

The segments read model recomputes a customer's whole tier timeline from all its deals; it used to do
so on every event, by evaluating the segment from scratch at each instant it may change, so one
customer with n deals cost O(n³) (500 deals: 199 s against the funnel's 0.6 s). For each size, a fresh
PostgreSQL database gets `whale.whale_history` (made in memory, exported and imported with
`crm import`'s code path), then the funnel alone and the segments alone are rebuilt, each timed.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from services.application import CrmApplication
from services.history.importer import import_history
from services.history.exporter import export_history
from services.projection_runtime.registry import projector_for
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.benchmarks.harness import Bench, Metric, log, ratio
from tests.benchmarks.whale import whale_history

SIZES = (1_000, 2_000, 4_000)  # deals of the one customer
SMOKE_SIZES = (300,)
TARGET_RATIO = 2.0


def _whale_log(url: str, deals: int, workdir: Path) -> int:
    """Fill the database at `url` with one customer's `deals` deals; returns the events in the log."""
    scratch = CrmApplication(database_from_url("memory://"))
    whale_history(scratch, deals)
    path = workdir / f"whale-{deals}.jsonl"
    with path.open("wb") as out:
        export_history(scratch, out)
    scratch.close()
    app = CrmApplication(database_from_url(url))
    try:
        return import_history(app, path, jobs=1)
    finally:
        app.close()


def _rebuild_seconds(url: str, name: str) -> float:
    app = CrmApplication(database_from_url(url))
    store = ReadModelStore(app.database)
    try:
        projector = projector_for(app, store, [name])
        started = time.perf_counter()
        projector.rebuild()
        return time.perf_counter() - started
    finally:
        store.close()
        app.close()


def measure(bench: Bench) -> list[Metric]:
    runs = []
    with tempfile.TemporaryDirectory(prefix="crm-bench-whale-") as workdir:
        for deals in SMOKE_SIZES if bench.plan.smoke else SIZES:
            url = bench.database()
            events = _whale_log(url, deals, Path(workdir))
            log(f"one customer with {deals:,} deals ({events:,} events): rebuilding the funnel, then the segments")
            funnel, segments = _rebuild_seconds(url, "funnel"), _rebuild_seconds(url, "segments")
            runs.append({"deals": deals, "events": events, "segments_seconds": round(segments, 3),
                         "funnel_seconds": round(funnel, 3), "ratio": ratio(segments, funnel)})
    largest = runs[-1]
    worst = max(run["ratio"] or 0 for run in runs)
    return [Metric(
        "segments_rebuild_one_customer", largest["segments_seconds"], "s",
        "the funnel read model's rebuild over the same log", largest["funnel_seconds"], largest["ratio"],
        f"≤ {TARGET_RATIO:g}× the funnel's rebuild at every size", worst <= TARGET_RATIO,
        {"runs": runs, "history": "tests.benchmarks.whale: deals opened at random instants over 3 years, "
                                  "saved one after the other; 70% won, a tenth of all deals reopened later and won again"},
    )]
