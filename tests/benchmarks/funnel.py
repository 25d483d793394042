"""As-of funnel query latency (the read model) vs replaying the log up to the same instant."""

from __future__ import annotations

import random
import statistics
import time
from datetime import timedelta

from projections.funnel import FunnelQueries, percentile
from services.projection_runtime.funnel_as_of import replay_funnel, stages_of
from tests.benchmarks.harness import Bench, Metric, ratio

TARGET_P95_MS = 50
TARGET_SPEEDUP = 100
WARM_UP = 5  # queries run first and not counted (connection and plan caches)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def measure(bench: Bench) -> list[Metric]:
    bench.rebuild  # noqa: B018 - the read models must be built
    queries, stages = FunnelQueries(bench.store), stages_of(bench.app, "sales")
    rng = random.Random(7)
    span = (bench.history.end - bench.history.start).total_seconds()
    instants = [bench.history.start + timedelta(seconds=rng.uniform(0, span))
                for _ in range(bench.plan.funnel_instants)]
    for instant in instants[:WARM_UP]:
        queries.report("sales", stages, instant)
    latencies = []
    for instant in instants:
        started = time.perf_counter()
        queries.report("sales", stages, instant)
        latencies.append(time.perf_counter() - started)
    replays = []
    for instant in instants[:bench.plan.replay_instants]:
        started = time.perf_counter()
        replay_funnel(bench.app, "sales", instant)
        replays.append(time.perf_counter() - started)
    p50, p95, replay = percentile(latencies, 0.5), percentile(latencies, 0.95), statistics.median(replays)
    speedup = ratio(replay, p95)
    return [Metric(
        "asof_funnel_query", _ms(p95), "ms (p95)",
        f"replay_funnel: fold the log up to the instant (median of {len(replays)} instants)", _ms(replay), speedup,
        f"p95 < {TARGET_P95_MS} ms and ≥ {TARGET_SPEEDUP}× faster than replay (ratio = replay ÷ p95)",
        _ms(p95) < TARGET_P95_MS and speedup is not None and speedup >= TARGET_SPEEDUP,
        {"instants": len(latencies), "p50_ms": _ms(p50), "p95_ms": _ms(p95), "max_ms": _ms(max(latencies)),
         "pipeline": "sales", "events": bench.app.event_count(),
         "replay_ms": [_ms(seconds) for seconds in replays]},
    )]
