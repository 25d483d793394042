"""Runs the benchmarks and prints one JSON object per metric (one per line), then a summary object.

Each run uses fresh PostgreSQL databases and Kafka topics (dropped/deleted at the end) on the servers
the integration tests use (tests/support/running_services.py: CRM_TEST_POSTGRES_URL / CRM_TEST_KAFKA_BOOTSTRAP,
else Docker, else deploy/). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, Any

import orjson

from domain.partitions import PARTITIONS  # the relay publishes by home partition
from services.application import CrmApplication
from services.history.importer import DEFAULT_BATCH
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.benchmarks.history import History, cached_history
from tests.support import running_services as services

REPO_ROOT = Path(__file__).resolve().parents[2]
SMOKE_EVENTS = 5000
FULL_SCALE_EVENTS = 1_000_000


@dataclass(frozen=True)
class Metric:
    """One measured number, what it is compared with, and whether it meets its target."""

    metric: str
    value: float | None
    unit: str
    baseline: str | None
    baseline_value: float | None
    ratio: float | None
    target: str
    met: bool | None
    details: dict[str, Any] | str = field(default_factory=dict)

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


@dataclass(frozen=True)
class Plan:
    """How big each part of the run is: `--scale 1.0` ≈ 1,000,000 events; `--smoke` ≈ 5,000, seconds each."""

    scale: float
    smoke: bool
    events: int
    naive_ingest_sample: int = 5_000  # events saved one aggregate per transaction, then extrapolated
    naive_projection_sample: int = 2_000  # events projected one per transaction, then extrapolated
    funnel_instants: int = 200
    replay_instants: int = 3
    relay_sample: int = 100_000  # events the relay publishes, and the raw producer sends, for their throughput
    delivery_rate: int = 50  # commands per second
    delivery_seconds: int = 20
    http_clients: int = 8
    http_seconds: int = 15
    http_deals_per_client: int = 50
    memory_fraction: float = 0.1  # peak memory is compared between this fraction of the history and all of it
    batch: int = DEFAULT_BATCH  # what `crm import` writes per transaction unless told otherwise
    writer_levels: tuple[int, ...] = (1, 4, 16)  # concurrent writer processes
    writer_seconds: float = 5.0  # per round; the rounds of a level alternate the command path and the baseline
    writer_repeats: int = 3
    lag_rate: int = 20  # commands/s outside the burst (the burst is ten times that)
    lag_seconds: float = 5.0  # each phase: steady, burst, steady
    consumer_levels: tuple[int, ...] = (1, 2, 3)  # `crm projections consume` members, when the branch has it

    @classmethod
    def of(cls, scale: float, smoke: bool) -> Plan:
        if smoke:
            return cls(SMOKE_EVENTS / FULL_SCALE_EVENTS, True, SMOKE_EVENTS, naive_ingest_sample=500,
                       naive_projection_sample=200, replay_instants=1, relay_sample=SMOKE_EVENTS, delivery_rate=20, delivery_seconds=2,
                       http_clients=4, http_seconds=2, http_deals_per_client=10,
                       writer_levels=(1, 2), writer_seconds=0.5, writer_repeats=1, lag_rate=10, lag_seconds=1.0,
                       consumer_levels=(2,))
        return cls(scale, False, max(SMOKE_EVENTS, round(scale * FULL_SCALE_EVENTS)))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_child(*arguments: str) -> dict[str, Any]:
    """Run `python -m tests.benchmarks.child ARGUMENTS` and return the JSON it prints."""
    done = subprocess.run([sys.executable, "-m", "tests.benchmarks.child", *arguments], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child {arguments[0]} failed:\n{done.stderr[-3000:]}")
    return orjson.loads(done.stdout.strip().splitlines()[-1])


class Bench:
    """The run's history, servers and main database; the measured import and rebuild happen once, on demand."""

    def __init__(self, plan: Plan, stack: ExitStack, workdir: Path, history: History, server_url: str,
                 bootstrap: str) -> None:
        self.plan, self.workdir, self.history = plan, workdir, history
        self.server_url, self.bootstrap = server_url, bootstrap
        self._stack = stack
        self.main_url = self.database()

    def database(self) -> str:
        """URL of a fresh database, dropped at the end of the run."""
        return self._stack.enter_context(services.temporary_database(self.server_url, "crm_bench"))

    def topic(self) -> str:
        return self._stack.enter_context(services.temporary_topic(self.bootstrap, partitions=PARTITIONS, prefix="crm-bench"))

    @cached_property
    def ingest(self) -> dict[str, Any]:
        log(f"importing {self.history.events:,} events into PostgreSQL (crm import's code path)")
        return run_child("ingest", self.main_url, str(self.history.path), str(self.plan.batch))

    @cached_property
    def rebuild(self) -> dict[str, Any]:
        self.ingest  # noqa: B018 - the log must be imported first
        log("rebuilding every read model")
        return run_child("rebuild", self.main_url)

    @cached_property
    def app(self) -> CrmApplication:
        self.ingest  # noqa: B018 - the log must be imported first
        app = CrmApplication(database_from_url(self.main_url))
        self._stack.callback(app.close)
        return app

    @cached_property
    def store(self) -> ReadModelStore:
        store = ReadModelStore(self.app.database)
        self._stack.callback(store.close)
        return store


Measure = Callable[[Bench], list[Metric]]


def groups() -> dict[str, tuple[Measure, tuple[str, ...]]]:
    """Each selectable group: how to measure it and the metrics it reports (in run order)."""
    from tests.benchmarks import (asof, attribution, blue_green, bulk, campaigns, cli_start, csv_import, delivery,
                                  funnel, http_commands, ingest, memory, rebuild, lag, reminders, scaling, segments,
                                  writers)

    return {
        "ingest": (ingest.measure, ("bulk_ingest",)),
        "rebuild": (rebuild.measure, ("projection_rebuild",)),
        "funnel": (funnel.measure, ("asof_funnel_query",)),
        "campaigns": (campaigns.measure, ("asof_campaigns_query",)),
        "memory": (memory.measure, ("peak_memory_ingest", "peak_memory_rebuild")),
        "delivery": (delivery.measure, ("delivery_latency", "relay_throughput")),
        "reminders": (reminders.measure, ("reminder_delivery_latency",)),
        "http": (http_commands.measure, http_commands.metric_names()),
        "segments": (segments.measure, ("segments_rebuild_one_customer",)),
        "cli": (cli_start.measure, ("cli_start",)),
        "csv": (csv_import.measure, ("csv_import_rows", "csv_import_events")),
        "writers": (writers.measure, writers.metric_names()),
        "lag": (lag.measure, lag.metric_names()),
        "online": (blue_green.measure, ("query_p95_during_online_rebuild",)),
        "bulk": (bulk.measure, bulk.metric_names()),
        "scaling": (scaling.measure, scaling.metric_names()),
        "asof": (asof.measure, asof.metric_names()),
        "attribution": (attribution.measure, attribution.metric_names()),
    }


def _failed(names: tuple[str, ...], error: BaseException) -> list[Metric]:
    return [Metric(name, None, "", None, None, None, "", None, {"error": f"{type(error).__name__}: {error}"})
            for name in names]


@contextmanager
def bench_environment(plan: Plan) -> Iterator[Bench]:
    with ExitStack() as stack:
        server_url = stack.enter_context(services.postgres_server())
        bootstrap = stack.enter_context(services.kafka_server())
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crm-bench-")))
        log(f"generating the demo history (≈{plan.events:,} events)")
        history = cached_history(plan.events, workdir)
        log(f"{history.events:,} events from {history.leads:,} leads: generated in {history.generate_seconds:.1f} s, "
            f"exported in {history.export_seconds:.1f} s")
        yield Bench(plan, stack, workdir, history, server_url, bootstrap)


def run(plan: Plan, only: list[str], out: IO[str]) -> bool:
    """Measure the selected groups (all when none), print their metrics and a summary; False if one crashed."""
    started, emitted, crashed = time.perf_counter(), [], False
    selected = {name: group for name, group in groups().items() if not only or name in only}
    with bench_environment(plan) as bench:
        for name, (measure, names) in selected.items():
            log(f"measuring {name}")
            try:
                metrics = measure(bench)
            except Exception as error:  # report it and go on: one broken metric must not hide the others
                log(f"{name} failed:\n{traceback.format_exc()}")
                metrics, crashed = _failed(names, error), True
            for metric in metrics:
                out.write(metric.to_json() + "\n")
                out.flush()
            emitted.extend(metrics)
        history = bench.history
    summary = {"summary": True, "scale": plan.scale, "smoke": plan.smoke, "events": history.events,
               "leads": history.leads, "metrics": len(emitted), "met": sum(m.met is True for m in emitted),
               "missed": [m.metric for m in emitted if m.met is False],
               "unknown": [m.metric for m in emitted if m.met is None],
               "generate_seconds": round(history.generate_seconds, 1),
               "export_seconds": round(history.export_seconds, 1),
               "seconds": round(time.perf_counter() - started, 1)}
    out.write(orjson.dumps(summary).decode() + "\n")
    return not crashed


def main(argv: list[str] | None = None, out: IO[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 ≈ 1,000,000 events (default 1.0)")
    parser.add_argument("--only", nargs="+", choices=list(groups()), default=[], metavar="NAME",
                        help=f"measure only these: {', '.join(groups())}")
    parser.add_argument("--smoke", action="store_true", help="every metric at a tiny scale; targets not meaningful")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    return 0 if run(Plan.of(args.scale, args.smoke), args.only, out or sys.stdout) else 1
