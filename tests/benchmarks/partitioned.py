"""Partitioned projection on PostgreSQL: events/s of the log follower vs `PartitionedProjector` fed the same
log spread over 3 partitions, by one consumer (batches interleaving the partitions) and by 1–3 concurrent
workers (threads, one partition and connection each); how many batches met another worker's and were
done again, and how many ran alone (they applied a reference event first). Every run writes into a fresh read-store database; the log is the demo history.

    eval "$(bash deploy/services.sh env)"
    python -m tests.benchmarks.partitioned --leads 2000 --batch 1000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from domain.campaign import Campaign
from projections.read_model import ReadModel
from services.application import CrmApplication
from services.demo.sample_data import DemoHistory, DemoSettings
from services.projection_runtime.partitioned import Delivery, PartitionedProjector
from services.projection_runtime.projector import Projector
from services.projection_runtime.registry import READ_MODELS
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.support import running_services as services
from tests.support.equivalence import all_read_models, partition_streams, sealed_log


Run = Callable[[str], tuple[int, int]]  # read-store URL → (batches retried, batches run alone)


def _timed(server: str, run: Run) -> tuple[float, tuple[int, int]]:
    with services.temporary_database(server, prefix="crm_bench") as url:
        started = time.perf_counter()
        counts = run(url)
        return time.perf_counter() - started, counts


def _workers(streams: list[list[Delivery]], workers: int, batch: int,
             models: Callable[[], list[ReadModel]] = all_read_models) -> Run:
    """`workers` threads sharing the partitions round-robin, each applying its own in turn, `batch` at a time."""
    def run(url: str) -> int:
        database = database_from_url(url)
        PartitionedProjector(ReadModelStore(database), models()).store.close()
        projectors = [PartitionedProjector(ReadModelStore(database), models()) for _ in range(workers)]

        def work(w: int) -> None:
            mine = [stream for p, stream in enumerate(streams) if p % workers == w]
            for start in range(0, max(map(len, mine)), batch):
                for stream in mine:
                    projectors[w].apply(stream[start:start + batch])

        with ThreadPoolExecutor(workers) as pool:
            for future in [pool.submit(work, w) for w in range(workers)]:
                future.result()
        for projector in projectors:
            projector.store.close()
        return sum(p.retries for p in projectors), sum(p.alone for p in projectors)
    return run


def _interleaved(streams: list[list[Delivery]], batch: int) -> Run:
    """One consumer, each batch holding `batch` / 3 deliveries of every partition."""
    def run(url: str) -> int:
        projector = PartitionedProjector(ReadModelStore(database_from_url(url)), all_read_models())
        share = max(batch // len(streams), 1)
        for start in range(0, max(map(len, streams)), share):
            projector.apply([d for stream in streams for d in stream[start:start + share]])
        projector.store.close()
        return projector.retries, projector.alone
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--per-model", action="store_true", help="also 3 workers on each read model alone")
    parser.add_argument("--without-responses", action="store_true",
                        help="leave out Campaign.ResponseRecorded (on the campaign's stream: a reference event in "
                             "every partition), as when responses are on the respondents' streams")
    args = parser.parse_args(argv)
    server = os.environ["CRM_TEST_POSTGRES_URL"]
    with services.temporary_database(server, prefix="crm_bench") as log_url:
        app = CrmApplication(database_from_url(log_url))
        app.ensure_default_pipelines()
        DemoHistory(app, DemoSettings(leads=args.leads, days=365)).run()
        events = [e for e in sealed_log(app)
                  if not (args.without_responses and isinstance(e, Campaign.ResponseRecorded))]
        streams = partition_streams(events)
        deliveries = sum(map(len, streams))
        print(f"{len(events)} events, {deliveries} deliveries over 3 partitions", file=sys.stderr)

        def follower(url: str) -> tuple[int, int]:
            store = ReadModelStore(database_from_url(url))
            Projector(app, store, all_read_models()).catch_up(limit=args.batch)
            store.close()
            return 0, 0

        runs: dict[str, Run] = {"log follower": follower,
                                                 "partitioned, 1 consumer": _interleaved(streams, args.batch)}
        runs.update({f"partitioned, {n} workers": _workers(streams, n, args.batch) for n in (1, 2, 3)})
        if args.per_model:
            runs.update({f"3 workers, {name} alone": _workers(streams, 3, args.batch, lambda m=model: [m()])
                         for name, model in READ_MODELS.items()})
        results: dict[str, Any] = {}
        for name, run in runs.items():
            seconds, (retries, alone) = _timed(server, run)
            results[name] = {"seconds": round(seconds, 2), "events_per_s": round(len(events) / seconds),
                             "retried_batches": retries, "batches_alone": alone}
            print(name, results[name], file=sys.stderr)
        app.close()
    print(json.dumps({"metric": "partitioned_projection", "events": len(events), "deliveries": deliveries,
                      "batch": args.batch, "without_responses": args.without_responses, "runs": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
