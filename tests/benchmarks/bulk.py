"""The bulk rebuild path (services/bulk) against the handlers on the same log, in the same run: every read model
with a set-based fold (`services.bulk.duckdb_rebuild.FOLDS`, whatever it holds when the run starts) rebuilt
both ways, and the log read both ways (the flat log vs the domain events the projector decodes)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from projections.read_model import ReadModel
from services.bulk.duckdb_rebuild import FOLDS, bulk_build
from services.bulk.log_reader import read_log
from services.projection_runtime.projector import Projector
from services.projection_runtime.registry import READ_MODELS
from tests.benchmarks.harness import Bench, Metric, log, ratio

TARGET_RATE = 40_000  # issue 14: every read model ≥ 40k events/s by the bulk path at 1M events (goal 100k)
READ_BATCH = 20_000  # the projector's batch (services.projection_runtime.projector.DEFAULT_BATCH)


def metric_names() -> tuple[str, ...]:
    return (*(f"bulk_{name}_rebuild" for name in FOLDS), "bulk_log_read")


def seconds_of(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _read_flat(bench: Bench) -> int:
    with read_log(bench.app.database) as log:
        return sum(batch.num_rows for batch in log.batches)


def _read_domain_events(bench: Bench) -> int:
    """What the handlers' rebuild reads: notifications, decoded into domain events (personal data sealed)."""
    app, start, count = bench.app, 0, 0
    while notifications := app.recorder.select_notifications(start + 1, READ_BATCH):
        count += len(app.mapper.to_sealed_events(notifications))
        start = notifications[-1].id
    return count


class _Phases(logging.Handler):
    """Collects the bulk rebuild's own account of its phases: `rebuild_set_based` logs (name, position, seconds
    reading and folding, seconds writing) once per read model."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: dict[str, Any] = {}

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if "read and folded" in str(record.msg) and len(args) == 4:
            self.seen = {"read_and_fold_seconds": round(args[2], 2), "write_seconds": round(args[3], 2)}


@contextmanager
def phases() -> Iterator[_Phases]:
    logger, handler = logging.getLogger("services.bulk.duckdb_rebuild"), _Phases()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _rebuild_both_ways(bench: Bench, model: ReadModel) -> Metric:
    """`model` rebuilt by its handlers, then in bulk, on the same log: events/s of each (of the whole log: a
    rebuild reads all of it, whatever share of it the read model folds)."""
    app, store, events = bench.app, bench.store, bench.app.event_count()
    log(f"rebuilding the {model.name} by its handlers, then in bulk")
    handlers = seconds_of(lambda: Projector(app, store, [model]).rebuild())
    with phases() as split:
        bulk = seconds_of(lambda: bulk_build(app, store, [model.name]))
    rate, handler_rate = events / bulk, events / handlers
    return Metric(f"bulk_{model.name}_rebuild", round(rate), "events/s",
                  f"the handlers' rebuild of the {model.name} alone (Projector.rebuild), same log, same run",
                  round(handler_rate), ratio(rate, handler_rate), f"≥ {TARGET_RATE:,} events/s (goal 100,000)",
                  rate >= TARGET_RATE,
                  {"events": events, "bulk_seconds": round(bulk, 2), **split.seen,
                   "handlers_seconds": round(handlers, 2), "load_average": round(os.getloadavg()[0], 1)})


def measure(bench: Bench) -> list[Metric]:
    events = bench.app.event_count()
    rebuilds = [_rebuild_both_ways(bench, READ_MODELS[name]()) for name in FOLDS]
    flat = seconds_of(lambda: _read_flat(bench))
    domain = seconds_of(lambda: _read_domain_events(bench))
    return [
        *rebuilds,
        Metric("bulk_log_read", round(events / flat), "events/s",
               "notifications decoded into domain events (the projector's read), same log, same run",
               round(events / domain), ratio(domain, flat), "faster than the domain decode", flat < domain,
               {"flat_us_per_event": round(flat / events * 1e6, 1),
                "domain_us_per_event": round(domain / events * 1e6, 1)}),
    ]
