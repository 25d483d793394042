"""Query latency while `crm projections rebuild --online` builds the next version of every read model and swaps
it in, against the same queries on an idle database, in one run (the ratio is what matters)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from datetime import timedelta

from projections.funnel import FunnelQueries, percentile
from services.projection_runtime.funnel_as_of import stages_of
from tests.benchmarks.funnel import WARM_UP, _ms
from tests.benchmarks.harness import REPO_ROOT, Bench, Metric, log, ratio

IDLE_QUERIES = 200


def measure(bench: Bench) -> list[Metric]:
    bench.rebuild  # noqa: B018 - the read models must be built
    queries, stages = FunnelQueries(bench.store), stages_of(bench.app, "sales")
    rng = random.Random(11)
    span = (bench.history.end - bench.history.start).total_seconds()

    def one() -> float:
        started = time.perf_counter()
        queries.report("sales", stages, bench.history.start + timedelta(seconds=rng.uniform(0, span)))
        return time.perf_counter() - started

    for _ in range(WARM_UP):
        one()
    idle = [one() for _ in range(IDLE_QUERIES)]
    log("rebuilding every read model online while querying the funnel")
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "gateways.cli.main", "projections", "rebuild", "--online"],
                             cwd=REPO_ROOT, env={**os.environ, "CRM_DATABASE_URL": bench.main_url},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    during = []
    try:
        while child.poll() is None:
            during.append(one())
    finally:  # a failed query must not leave the rebuild racing the next group's projectors
        child.wait()
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"crm projections rebuild --online failed: {child.stderr.read()[-2000:]}")
    idle_p95, during_p95 = percentile(idle, 0.95), percentile(during, 0.95)
    return [Metric(
        "query_p95_during_online_rebuild", _ms(during_p95), "ms (p95)",
        f"the same funnel query (FunnelQueries.report, random instants) on the idle database, {IDLE_QUERIES} "
        "queries just before", _ms(idle_p95), ratio(during_p95, idle_p95), "none (informational)", None,
        {"queries_during": len(during), "during_p50_ms": _ms(percentile(during, 0.5)), "during_max_ms":
         _ms(max(during)), "idle_p50_ms": _ms(percentile(idle, 0.5)), "idle_max_ms": _ms(max(idle)),
         "online_rebuild_seconds": round(seconds, 2), "offline_rebuild_seconds": bench.rebuild["seconds"],
         "events": bench.app.event_count(), "cores": os.cpu_count()},
    )]
