"""As-of campaigns report latency at 10 % and at 100 % of the history: from the tallies, and derived from
every fact (`facts_report`, how every report was answered before the tallies), on the same read model."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from domain.exchange_rates import Conversion
from projections.campaigns import CampaignQueries
from projections.campaigns.facts_report import facts_report, load_facts
from projections.funnel import percentile
from projections.tables import micros
from tests.benchmarks.harness import Bench, Metric, ratio

TARGET_P95_MS = 100
TARGET_FLAT = 1.5  # p95 at 100 % of the history ÷ p95 at 10 %
WARM_UP = 5
FRACTIONS = (0.1, 1.0)
WINDOW = 0.05  # instants fall in the last 5 % of the history before each fraction


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _instants(bench: Bench, fraction: float, count: int) -> list[datetime]:
    rng = random.Random(11)
    span = (bench.history.end - bench.history.start).total_seconds()
    return [bench.history.start + timedelta(seconds=span * (fraction - rng.uniform(0, WINDOW))) for _ in range(count)]


def _latencies(query: Callable[[datetime], object], instants: list[datetime]) -> list[float]:
    for instant in instants[:WARM_UP]:
        query(instant)
    latencies = []
    for instant in instants:
        started = time.perf_counter()
        query(instant)
        latencies.append(time.perf_counter() - started)
    return latencies


def measure(bench: Bench) -> list[Metric]:
    bench.rebuild  # noqa: B018 - the read models must be built
    queries = CampaignQueries(bench.store)

    def from_facts(instant: datetime) -> object:
        return facts_report(instant, load_facts(bench.store, micros(instant), Conversion()), None, Conversion())

    loads, summed, derived = [os.getloadavg()[0]], {}, {}
    for fraction in FRACTIONS:
        summed[fraction] = _latencies(queries.report, _instants(bench, fraction, bench.plan.funnel_instants // 2))
        derived[fraction] = _latencies(from_facts, _instants(bench, fraction, 3 if bench.plan.smoke else 20))
        loads.append(os.getloadavg()[0])
    p95 = {fraction: percentile(summed[fraction], 0.95) for fraction in FRACTIONS}
    planned = {fraction: len(queries.report(_instants(bench, fraction, 1)[0]).campaigns) for fraction in FRACTIONS}
    before = {fraction: percentile(derived[fraction], 0.95) for fraction in FRACTIONS}
    flat = ratio(p95[1.0], p95[0.1])
    return [Metric(
        "asof_campaigns_query", _ms(p95[1.0]), "ms (p95)",
        "the same report derived from every fact up to the instant (facts_report: the query before the tallies), "
        "p95 at 100 % of the history", _ms(before[1.0]), ratio(before[1.0], p95[1.0]),
        f"p95 < {TARGET_P95_MS} ms at 100 % and ≤ {TARGET_FLAT}× its p95 at 10 % (ratio = before ÷ after)",
        _ms(p95[1.0]) < TARGET_P95_MS and flat is not None and flat <= TARGET_FLAT,
        {"p95_ms": {f"{int(f * 100)}%": _ms(p95[f]) for f in FRACTIONS},
         "p50_ms": {f"{int(f * 100)}%": _ms(percentile(summed[f], 0.5)) for f in FRACTIONS},
         "max_ms": {f"{int(f * 100)}%": _ms(max(summed[f])) for f in FRACTIONS},
         "flat_ratio": flat,
         # The report lists every campaign planned by its instant (and ≈ 22 sums each): its size, not the
         # history's length, is what still grows from 10 % to 100 % of a history that keeps planning campaigns.
         "campaigns_in_report": {f"{int(f * 100)}%": planned[f] for f in FRACTIONS},
         "before_p95_ms": {f"{int(f * 100)}%": _ms(before[f]) for f in FRACTIONS},
         "before_flat_ratio": ratio(before[1.0], before[0.1]),
         "instants": {"after": len(summed[1.0]), "before": len(derived[1.0])},
         "window": f"instants uniform in the {int(WINDOW * 100)} % of the history's span before each fraction",
         "load_average_1m": [round(load, 2) for load in loads], "events": bench.app.event_count()},
    )]
