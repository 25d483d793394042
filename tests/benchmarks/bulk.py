"""The bulk rebuild path (services/bulk) against the handlers on the same log, in the same run: the funnel,
the tickets, the segments and the campaigns rebuilt both ways, and the log read both ways (the flat log vs the domain events the projector decodes)."""

from __future__ import annotations

import time
from collections.abc import Callable

from projections.campaigns import CampaignsReadModel
from projections.funnel import FunnelReadModel
from projections.read_model import ReadModel
from projections.segments import SegmentsReadModel
from projections.tickets import TicketsReadModel
from services.bulk.duckdb_rebuild import bulk_build
from services.bulk.log_reader import read_log
from services.projection_runtime.projector import Projector
from tests.benchmarks.harness import Bench, Metric, ratio

TARGET_RATE = 40_000  # issue 14: every read model ≥ 40k events/s by the bulk path at 1M events (goal 100k)
READ_BATCH = 20_000  # the projector's batch (services.projection_runtime.projector.DEFAULT_BATCH)


def _seconds(work: Callable[[], object]) -> float:
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


def _rebuild_both_ways(bench: Bench, model: ReadModel) -> Metric:
    """`model` rebuilt by its handlers, then in bulk, on the same log: events/s of each."""
    app, store, events = bench.app, bench.store, bench.app.event_count()
    handlers = _seconds(lambda: Projector(app, store, [model]).rebuild())
    bulk = _seconds(lambda: bulk_build(app, store, [model.name]))
    rate, handler_rate = events / bulk, events / handlers
    return Metric(f"bulk_{model.name}_rebuild", round(rate), "events/s",
                  f"the handlers' rebuild of the {model.name} alone (Projector.rebuild), same log, same run",
                  round(handler_rate), ratio(rate, handler_rate), f"≥ {TARGET_RATE:,} events/s (goal 100,000)",
                  rate >= TARGET_RATE,
                  {"events": events, "bulk_seconds": round(bulk, 2), "handlers_seconds": round(handlers, 2)})


def measure(bench: Bench) -> list[Metric]:
    events = bench.app.event_count()
    rebuilds = [_rebuild_both_ways(bench, model)
                for model in (FunnelReadModel(), TicketsReadModel(), SegmentsReadModel(), CampaignsReadModel())]
    flat = _seconds(lambda: _read_flat(bench))
    domain = _seconds(lambda: _read_domain_events(bench))
    return [
        *rebuilds,
        Metric("bulk_log_read", round(events / flat), "events/s",
               "notifications decoded into domain events (the projector's read), same log, same run",
               round(events / domain), ratio(domain, flat), "faster than the domain decode", flat < domain,
               {"flat_us_per_event": round(flat / events * 1e6, 1),
                "domain_us_per_event": round(domain / events * 1e6, 1)}),
    ]
