"""Full projection rebuild of every read model vs the naive path (one transaction per event)."""

from __future__ import annotations

import time

from services.projection_runtime.registry import projector_for
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.benchmarks.harness import Bench, Metric, ratio

TARGET_RATE = 100_000
TARGET_SPEEDUP = 10


def naive_projection(bench: Bench) -> tuple[float, int]:
    """Events/s of `catch_up(limit=1)`'s steps, into a scratch store, over the first events of the log."""
    store = ReadModelStore(database_from_url(bench.database()))
    projector = projector_for(bench.app, store)
    covered, started = 0, time.perf_counter()
    while covered < bench.plan.naive_projection_sample:
        step = projector.run_batch(limit=1)
        if step == 0:
            break
        covered += step
    seconds = time.perf_counter() - started
    store.close()
    return covered / seconds, covered


def measure(bench: Bench) -> list[Metric]:
    events, seconds = bench.rebuild["events"], bench.rebuild["seconds"]
    rate = events / seconds
    naive_rate, sample = naive_projection(bench)
    speedup = ratio(rate, naive_rate)
    return [Metric(
        "projection_rebuild", round(rate), "events/s",
        "naive: one transaction per event (Projector.catch_up(limit=1)), sample extrapolated", round(naive_rate),
        speedup, f"≥ {TARGET_RATE:,} events/s and ≥ {TARGET_SPEEDUP}× naive",
        rate >= TARGET_RATE and speedup is not None and speedup >= TARGET_SPEEDUP,
        {"events": events, "seconds": round(seconds, 2), "read_models": "all (services.projection_runtime.registry.READ_MODELS)",
         "naive_sample_events": sample, "naive_extrapolated_seconds": round(events / naive_rate, 1)},
    )]
