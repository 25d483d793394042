"""Attribution as of T (issue 16): p95 of `AttributionQueries.credits` (`GET /reports/attribution`, by campaign,
the six models in turn, time decay at its default half-life) and of `AttributionQueries.cohorts` (`GET
/reports/cohorts`, by month) at random instants near 10 % and near 100 % of the history, against replaying
the log up to the same instant into a scratch store and asking it the same question (as the `asof` group).

The attribution read model keeps dated facts and derives every credit at query time (a touch recorded after a
win changes its credits; the half-life is chosen per query), so its cost grows with the facts up to T: the
ratio of the two fractions is reported, not held flat."""

from __future__ import annotations

import os
import random
import time
from datetime import datetime
from typing import Any

from domain.attribution import MODELS
from projections.attribution import AttributionQueries, AttributionReadModel
from projections.rates import RateQueries, RatesReadModel
from services.application import CrmApplication
from services.projection_runtime.registry import projector_for
from services.storage.read_model_store import ReadModelStore
from tests.benchmarks.asof import FRACTIONS, AsOfQuery, _replay, by_fraction
from tests.benchmarks.funnel import _ms
from tests.benchmarks.harness import Bench, Metric, log, ratio

TARGET_P95_MS = 1000  # a report a person waits for (the dashboard's panel): ≤ 1 s at 1M events
QUERIES, SMOKE_QUERIES = 24, 6  # 24: each of the six models four times


def _credits(app: CrmApplication, store: ReadModelStore, at: datetime, rng: random.Random) -> Any:
    model = MODELS[rng.randrange(len(MODELS))]
    return AttributionQueries(store).credits(at, model, "campaign",
                                             money=RateQueries(store).conversion(app.reporting_currency, at))


def _cohorts(app: CrmApplication, store: ReadModelStore, at: datetime, rng: random.Random) -> Any:
    return AttributionQueries(store).cohorts(at, "month", money=RateQueries(store).conversion(app.reporting_currency, at))


ASKED = (AsOfQuery("attribution", _credits, lambda: [AttributionReadModel(), RatesReadModel()]),
         AsOfQuery("cohorts", _cohorts, lambda: [AttributionReadModel(), RatesReadModel()]))


def metric_names() -> tuple[str, ...]:
    return tuple(f"asof_{query.name}_query" for query in ASKED)


def _measure_one(bench: Bench, query: AsOfQuery, built: dict[str, Any]) -> Metric:
    found, _ = by_fraction(bench, query, SMOKE_QUERIES if bench.plan.smoke else QUERIES)
    replay = _replay(bench, query, bench.history.end)
    high, low = found[f"{FRACTIONS[-1]:.0%}"], found[f"{FRACTIONS[0]:.0%}"]
    return Metric(f"asof_{query.name}_query", high["p95_ms"], "ms (p95)",
                  "replay to the same instant (replay_until into a scratch store), then the same query",
                  _ms(replay), ratio(replay, high["p95_ms"] / 1000),
                  f"p95 < {TARGET_P95_MS} ms at 100 % of the history", high["p95_ms"] < TARGET_P95_MS,
                  {"events": bench.app.event_count(), "p95_100_over_10": ratio(high["p95_ms"], low["p95_ms"]),
                   "by_fraction": found, "built": built, "load_average": round(os.getloadavg()[0], 1)})


def measure(bench: Bench) -> list[Metric]:
    """Builds the attribution and rates read models (a no-op when `rebuild` ran) and measures their queries."""
    started = time.perf_counter()
    log("building the attribution read model")
    projector_for(bench.app, bench.store, ["attribution", "rates"]).catch_up()
    built = {"seconds": round(time.perf_counter() - started, 1),
             "touches": bench.store.query("SELECT COUNT(*) FROM attribution_responses", [])[0][0],
             "won_or_closed": bench.store.query("SELECT COUNT(*) FROM attribution_deal_events WHERE kind <> 'amount'",
                                                [])[0][0]}
    return [_measure_one(bench, query, built) for query in ASKED]
