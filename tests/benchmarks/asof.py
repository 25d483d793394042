"""The as-of query of every read model that answers "as of T" — funnel, timeline, tickets, segments,
campaigns, forecast — at instants near 10 % and near 100 % of the history, against replaying the log up to the same
instant into a scratch store (`services.projection_runtime.replay.replay_until`; the funnel by its own replay,
`replay_funnel`, as the `funnel` group) and asking it the same question — at 100 % only: a replay reads the
whole log whatever the instant, so at 10 % it would cost the same minutes and tell nothing new.

Each query is the one its HTTP endpoint runs without filters: the sales funnel (`GET /funnel`), one customer's
timeline (`GET /customers/{id}/timeline`, a customer registered by T), the tickets report (`GET /tickets`),
the tier counts (`GET /segments`), the campaigns report in the reporting currency (`GET /campaigns`), and the
forecast of T's quarter by owner (`GET /forecast?period=…&by=owner`).
Issue 14: every as-of query < 100 ms at 1M events, flat from 10 % to 100 % of the history."""

from __future__ import annotations

import os
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.periods import UTC, period_of
from projections.campaigns import CampaignQueries, CampaignsReadModel
from projections.forecast import ForecastQueries, ForecastReadModel
from projections.funnel import FunnelQueries, percentile
from projections.rates import RateQueries, RatesReadModel
from projections.read_model import ReadModel
from projections.tables import micros
from projections.segments import SegmentQueries, SegmentsReadModel
from projections.tickets import TicketQueries, TicketsReadModel
from projections.timeline import TimelineQueries, TimelineReadModel
from services.application import CrmApplication
from services.projection_runtime.funnel_as_of import replay_funnel, stages_of
from services.projection_runtime.replay import replay_until
from services.storage.read_model_store import ReadModelStore
from tests.benchmarks.funnel import _ms
from tests.benchmarks.harness import Bench, Metric, log, ratio

TARGET_P95_MS = 100
FLAT = 1.25  # p95 at 100 % ÷ p95 at 10 % of the history, as the memory metrics call flat
FRACTIONS = (0.1, 0.5, 1.0)  # 50 % too: at 10 % the demo history has 2 tickets, so that report is nearly empty
WINDOW = 0.01  # queries at random instants in the last 1 % of the history before each fraction's instant
QUERIES, SMOKE_QUERIES, WARM_UP = 40, 5, 3
QUERY_BUDGET_SECONDS = 30  # per read model and fraction: a slow query stops the series early (≥ WARM_UP + 5)

Ask = Callable[[CrmApplication, ReadModelStore, datetime, random.Random], Any]


@dataclass(frozen=True)
class AsOfQuery:
    """A read model's as-of question, and the read models its replay needs (None: the funnel's own replay)."""

    name: str
    ask: Ask
    replayed: Callable[[], list[ReadModel]] | None


def _funnel(app: CrmApplication, store: ReadModelStore, at: datetime, rng: random.Random) -> Any:
    return FunnelQueries(store).report("sales", stages_of(app, "sales"), at)


def _timeline(app: CrmApplication, store: ReadModelStore, at: datetime, rng: random.Random) -> Any:
    """One customer's timeline: the customer drawn from those registered by `at` (≈ at most 1,000 sampled)."""
    customers = store.query("SELECT customer_id FROM timeline_customers WHERE registered_at <= ? "
                            "ORDER BY registered_at DESC LIMIT 1000", [micros(at)])
    return TimelineQueries(store, app.keys.unseal_marks).timeline(UUID(rng.choice(customers)[0]), at)


def _tickets(app: CrmApplication, store: ReadModelStore, at: datetime, rng: random.Random) -> Any:
    return TicketQueries(store, app.keys.unseal_all_marks).report(at)


def _segments(app: CrmApplication, store: ReadModelStore, at: datetime, rng: random.Random) -> Any:
    return SegmentQueries(store).tier_counts(at)


def _campaigns(app: CrmApplication, store: ReadModelStore, at: datetime, rng: random.Random) -> Any:
    return CampaignQueries(store).report(at, money=RateQueries(store).conversion(app.reporting_currency, at))


def _forecast(app: CrmApplication, store: ReadModelStore, at: datetime, rng: random.Random) -> Any:
    """The quarter of T by owner, as a sales manager asks it (`crm forecast --period 2026-Q1 --by owner`);
    the report of every quarter lists more periods as the history grows, so it cannot be flat."""
    quarter = period_of(at, "quarter", UTC).label
    return ForecastQueries(store).report(at, "quarter", "owner", quarter, UTC,
                                         RateQueries(store).conversion(app.reporting_currency, at))


QUERIES_OF = (
    AsOfQuery("funnel", _funnel, None),
    AsOfQuery("timeline", _timeline, lambda: [TimelineReadModel()]),
    AsOfQuery("tickets", _tickets, lambda: [TicketsReadModel()]),
    AsOfQuery("segments", _segments, lambda: [SegmentsReadModel()]),
    AsOfQuery("campaigns", _campaigns, lambda: [CampaignsReadModel(), RatesReadModel()]),
    AsOfQuery("forecast", _forecast, lambda: [ForecastReadModel(), RatesReadModel()]),
)


def metric_names() -> tuple[str, ...]:
    return tuple(f"asof_{query.name}_query_flat" for query in QUERIES_OF)


def _latencies(bench: Bench, query: AsOfQuery, at: datetime, count: int) -> list[float]:
    rng, span = random.Random(zlib.crc32(query.name.encode())), bench.history.end - bench.history.start
    instants = [at - rng.uniform(0, WINDOW) * span for _ in range(WARM_UP + count)]
    latencies, budget = [], time.perf_counter() + QUERY_BUDGET_SECONDS
    for n, instant in enumerate(instants):
        started = time.perf_counter()
        query.ask(bench.app, bench.store, instant, rng)
        if n >= WARM_UP:
            latencies.append(time.perf_counter() - started)
        if len(latencies) >= 5 and time.perf_counter() > budget:
            break
    return latencies


def _replay(bench: Bench, query: AsOfQuery, at: datetime) -> float:
    """Seconds to answer the same question from the log alone: replay up to `at`, then ask the scratch store."""
    started = time.perf_counter()
    if query.replayed is None:
        replay_funnel(bench.app, "sales", at)
    else:
        store = replay_until(bench.app, query.replayed(), at)
        try:
            query.ask(bench.app, store, at, random.Random(1))
        finally:
            store.close()
    return time.perf_counter() - started


def by_fraction(bench: Bench, query: AsOfQuery, count: int) -> tuple[dict[str, dict[str, Any]], list[float]]:
    """p50, p95 and max of `count` queries near each fraction of the history, and the last fraction's latencies."""
    span = bench.history.end - bench.history.start
    found: dict[str, dict[str, Any]] = {}
    for fraction in FRACTIONS:
        at = bench.history.start + fraction * span
        log(f"as-of {query.name} at {fraction:.0%} of the history")
        latencies = _latencies(bench, query, at, count)
        found[f"{fraction:.0%}"] = {
            "instant": at.isoformat(), "queries": len(latencies), "p50_ms": _ms(percentile(latencies, 0.5)),
            "p95_ms": _ms(percentile(latencies, 0.95)), "max_ms": _ms(max(latencies)),
            "load_average": round(os.getloadavg()[0], 1)}
    return found, latencies


def _measure_one(bench: Bench, query: AsOfQuery) -> Metric:
    found, latencies = by_fraction(bench, query, SMOKE_QUERIES if bench.plan.smoke else QUERIES)
    replay = _replay(bench, query, bench.history.end)  # one: every replay reads the whole log (≈ 1–4 min at 1M)
    found[f"{FRACTIONS[-1]:.0%}"] |= {"replay_ms": _ms(replay), "speedup": ratio(replay, percentile(latencies, 0.95))}
    low, high = found[f"{FRACTIONS[0]:.0%}"], found[f"{FRACTIONS[-1]:.0%}"]
    growth = ratio(high["p95_ms"], low["p95_ms"])
    middle = found.get("50%")
    return Metric(
        f"asof_{query.name}_query_flat", high["p95_ms"], "ms (p95)",
        "replay to the same instant (replay_until into a scratch store, or replay_funnel), then the same query",
        high["replay_ms"], ratio(high["replay_ms"], high["p95_ms"]),
        f"p95 < {TARGET_P95_MS} ms at 100 % and flat: ≤ {FLAT}× its p95 at 10 % of the history",
        high["p95_ms"] < TARGET_P95_MS and growth is not None and growth <= FLAT,
        {"events": bench.app.event_count(), "p95_100_over_10": growth,
         "p95_100_over_50": ratio(high["p95_ms"], middle["p95_ms"]) if middle else None, "by_fraction": found,
         "window": f"instants drawn in the {WINDOW:.0%} of the history before each fraction's instant",
         "load_average": round(os.getloadavg()[0], 1)})


def measure(bench: Bench) -> list[Metric]:
    bench.rebuild  # noqa: B018 - the read models must be built
    return [_measure_one(bench, query) for query in QUERIES_OF]
