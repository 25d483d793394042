"""What the CRM shows Prometheus: the instruments the serving processes update, and the gauges read at scrape time.

Two kinds of metric, kept apart so that the hot path pays one histogram observation and nothing else:
- **Instruments** (`instruments()`): the command latency histogram and the HTTP request counter, updated as
  commands and requests happen. Under `crm serve --workers N` each worker updates its own; a scrape reaches
  one worker (the kernel picks it), so they are kept in prometheus-client's multiprocess mode: every worker
  writes memory-mapped files in one directory per server run (`shared_between_processes`), and the worker that
  answers a scrape sums them all.
- **Sources** (`Source`, added to a `MetricsRegistry`): lag and progress, computed when scraped, one cheap
  query each (indexed reads of a few rows), never per event. A part that has a lag to show adds a source
  with a plain function; the functions below read today's single database. A source that fails (the
  database is away) leaves its gauges out of that scrape and sets `crm_metrics_source_up{source}` to 0:
  the request counts still reach Prometheus during an outage.

prometheus-client is imported only here (≈ 60 ms): the CLI's queries never load this module.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from services.application import CrmApplication
from services.projection_runtime.projector import read_statuses
from services.projection_runtime.rebuild_record import REBUILDS, rebuilds
from services.sharding.router import ShardedApplication
from services.storage.read_model_store import ReadModelStore

log = logging.getLogger(__name__)
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own name for the shared directory

# Seconds. Measured through CrmApplication.handle, one writer (tests/benchmarks is the place for more):
# p50 0.6–1.8 ms and p99 5–13 ms on SQLite and PostgreSQL (RegisterCustomer, OpenDeal, ChangeStage, 300 each);
# 16 concurrent writers push p99 to ≈ 157 ms (issue 13). Doubling buckets from 0.5 ms to 2 s keep every
# quantile within a factor of 2 over that whole range, with 13 buckets per (command, outcome).
COMMAND_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048)
COMMAND_SECONDS = "crm_command_duration_seconds"
HTTP_REQUESTS = "crm_http_requests"  # exposed as crm_http_requests_total
SOURCE_UP = "crm_metrics_source_up"


# --- instruments: updated on the hot path ---------------------------------------------------------------

class Instruments:
    """The metrics updated as things happen. `registry` None: multiprocess mode, read back from the files."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.registry = registry
        self.command_seconds = Histogram(COMMAND_SECONDS, "Seconds from a command's request to its answer, by "
                                         "command type and outcome (ok, refused, conflict, error)",
                                         ("command", "outcome"), buckets=COMMAND_BUCKETS, registry=registry)
        self.http_requests = Counter(HTTP_REQUESTS, "HTTP requests answered, by method, route template and "
                                     "status", ("method", "route", "status"), registry=registry)

    def observe_command(self, command: str, outcome: str, seconds: float) -> None:
        self.command_seconds.labels(command, outcome).observe(seconds)

    def count_request(self, method: str, route: str, status: int) -> None:
        self.http_requests.labels(method, route, str(status)).inc()


_instruments: Instruments | None = None


def instruments() -> Instruments:
    """This process's instruments, made on first use (in a worker, after the fork)."""
    global _instruments
    if _instruments is None:
        _pick_value_class()
        _instruments = Instruments(None if multiprocess_directory() else CollectorRegistry())
    return _instruments


def multiprocess_directory() -> str | None:
    return os.environ.get(MULTIPROCESS_VARIABLE) or None


def _pick_value_class() -> None:
    """prometheus-client chooses per-process or file-backed values when it is imported, from the environment;
    `crm serve` imports it before it makes the run's directory and sets the variable (see
    `shared_between_processes`), so the choice is made again here, before the first metric exists."""
    if multiprocess_directory() and not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()


@contextmanager
def shared_between_processes() -> Iterator[str]:
    """A fresh directory for this server run's metric files, named in the environment the workers inherit;
    removed at the end (a new run starts its counters at 0, as Prometheus expects of a restart)."""
    directory = tempfile.mkdtemp(prefix="crm-metrics-")
    previous = os.environ.get(MULTIPROCESS_VARIABLE)
    os.environ[MULTIPROCESS_VARIABLE] = directory
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_VARIABLE, None)
        else:
            os.environ[MULTIPROCESS_VARIABLE] = previous
        shutil.rmtree(directory, ignore_errors=True)


def process_ended(pid: int) -> None:
    """A worker died: its counts stay (counters only grow); its files of live gauges, if any, go."""
    if directory := multiprocess_directory():
        mark_process_dead(pid, directory)


# --- sources: read at scrape time -----------------------------------------------------------------------

Samples = Mapping[str, Iterable[tuple[Sequence[str], float]]]  # gauge name → (label values, value) pairs


@dataclass(frozen=True)
class Gauge:
    """A gauge a source fills: its name, help and label names (several sources may fill one gauge)."""

    name: str
    help: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """One thing to look at when scraped: the gauges it fills and the function that reads them (one query)."""

    name: str
    gauges: tuple[Gauge, ...]
    read: Callable[[], Samples] = field(compare=False)


class MetricsRegistry:
    """The sources a scrape reads, plus the instruments: what /metrics answers (a prometheus collector)."""

    def __init__(self, sources: Iterable[Source] = (), instruments: Instruments | None = None) -> None:
        self.sources: dict[str, Source] = {}
        self.instruments = instruments
        for source in sources:
            self.add(source)

    def add(self, source: Source) -> None:
        """Add `source`, or replace the one of the same name (a sharded relay source over the default)."""
        self.sources[source.name] = source

    def gauges(self) -> dict[str, Gauge]:
        found: dict[str, Gauge] = {SOURCE_UP: Gauge(SOURCE_UP, "1 if the source's last read worked, else 0",
                                                    ("source",))}
        for source in self.sources.values():
            for gauge in source.gauges:
                if found.setdefault(gauge.name, gauge).labels != gauge.labels:
                    raise ValueError(f"{gauge.name} is filled with different labels by two sources")
        return found

    def names(self) -> set[str]:
        """Every sample name a scrape can show (what a dashboard may query)."""
        histogram = (f"{COMMAND_SECONDS}_{suffix}" for suffix in ("bucket", "count", "sum"))
        return {*self.gauges(), *histogram, f"{HTTP_REQUESTS}_total"}

    def collect(self) -> Iterator[Metric]:
        gauges = self.gauges()
        families = {name: GaugeMetricFamily(name, gauge.help, labels=gauge.labels) for name, gauge in gauges.items()}
        for source in self.sources.values():
            families[SOURCE_UP].add_metric([source.name], float(self._read_into(source, families)))
        yield from families.values()

    @staticmethod
    def _read_into(source: Source, families: dict[str, GaugeMetricFamily]) -> bool:
        try:
            samples = source.read()
            for name, pairs in samples.items():
                for labels, value in pairs:
                    families[name].add_metric([str(label) for label in labels], float(value))
        except Exception as error:  # noqa: BLE001 - one source's failure must not hide the other metrics
            log.warning("metrics: source %s could not be read: %s", source.name, error,
                        extra={"component": "metrics", "action": "source_failed", "source": source.name})
            return False
        return True

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition format of everything, and its content type. The instruments are summed over
        the processes of this server run (multiprocess mode) or taken from this process."""
        scrape = CollectorRegistry(auto_describe=False)
        if directory := multiprocess_directory():
            MultiProcessCollector(scrape, path=directory)
        elif self.instruments is not None and self.instruments.registry is not None:
            scrape.register(self.instruments.registry)
        scrape.register(self)
        return generate_latest(scrape), CONTENT_TYPE_PLAIN_0_0_4  # the format every Prometheus version reads


# --- the sources of one database (today's layout) -------------------------------------------------------

PROJECTION_LAG = Gauge("crm_projection_lag_events", "Events of the log a read model has not applied yet, per "
                       "partition (\"all\": one position over the whole log)", ("read_model", "partition"))
STOPPED = Gauge("crm_read_model_stopped", "1 while a read model is stopped at an event it cannot apply",
                ("read_model",))
LOG_HEAD = Gauge("crm_log_head_position", "The log's last position (the number of events)")
PROJECTION_OFFSET = Gauge("crm_projection_offset", "The last offset a read model applied in a partition",
                          ("read_model", "partition"))
RELAY_LAG = Gauge("crm_relay_lag_events", "Events of a shard's log its relay has not published yet",
                  ("relay", "shard"))
CONSUMER_LAG = Gauge("crm_consumer_group_lag_events", "Messages of a partition a consumer group has not "
                     "committed yet", ("group", "partition"))
REBUILD_PROGRESS = Gauge("crm_rebuild_progress", "Share of the log a rebuilding read model has applied (0 to 1)",
                         ("read_model",))
REBUILD_APPLIED = Gauge("crm_rebuild_events_applied", "Events a rebuilding read model has applied", ("read_model",))
REBUILD_TOTAL = Gauge("crm_rebuild_events_total", "Events of the log when the rebuild started", ("read_model",))
REBUILD_RUNNING = Gauge("crm_rebuild_running", "1 while `crm projections rebuild` runs for the read model",
                        ("read_model",))


def read_models_source(app: CrmApplication | ShardedApplication, store: ReadModelStore, names: Sequence[str],
                       whole_log: bool = True) -> Source:
    """Stopped state of each read model and, when one position follows the `whole_log` (one database), its lag
    (head − position). Over shards the read models are fed per partition: their lag is the offsets source's."""

    def read() -> Samples:
        statuses = read_statuses(app, store, names)
        head = statuses[0].head if statuses else app.event_count()
        return {LOG_HEAD.name: [((), head)],
                PROJECTION_LAG.name: [((s.name, "all"), max(s.lag, 0)) for s in statuses if whole_log],
                STOPPED.name: [((s.name,), int(s.stopped)) for s in statuses]}
    return Source("read_models", (LOG_HEAD, PROJECTION_LAG, STOPPED), read)


RelayPositions = Callable[[], Iterable[tuple[str, int, int, int]]]  # () → (relay, shard, its position, shard's head)


def relay_source(read: RelayPositions) -> Source:
    """Relay lag from `read`: (relay name, shard, its position, its shard's head) per relay, one per shard."""
    return Source("relays", (RELAY_LAG,), lambda: {
        RELAY_LAG.name: [((name, str(shard)), max(head - position, 0)) for name, shard, position, head in read()]})


def relay_positions(app: CrmApplication | ShardedApplication, store: ReadModelStore,
                    names: Sequence[str]) -> RelayPositions:
    """Each relay's position against its shard's head. Every relay keeps its position in the default shard's
    read store: shard 0's under its name (`kafka-relay`), shard N's under `kafka-relay:N`
    (gateways.kafka.relay.relay_name), so one query reads them all; a shard's head only where a relay ran."""
    shards = app.apps if isinstance(app, ShardedApplication) else [app]
    stored_as = {(name if shard == 0 else f"{name}:{shard}"): (name, shard)
                 for name in names for shard in range(len(shards))}

    def read() -> list[tuple[str, int, int, int]]:
        found = []
        for stored, position in _relay_rows(store, list(stored_as)):
            name, shard = stored_as[stored]
            found.append((name, shard, position, shards[shard].event_count()))
        return found
    return read


def _relay_rows(store: ReadModelStore, names: Sequence[str]) -> list[tuple[str, int]]:
    if not table_exists(store, "projection_positions"):  # a shard no relay ever ran on
        return []
    marks = ", ".join("?" * len(names))
    return store.query(f"SELECT name, position FROM projection_positions WHERE name IN ({marks})", list(names))


# (name, partition, "offset"), one row per (read model, partition): part *partproj*'s table
OFFSETS_TABLE = "projection_offsets"


def partition_offsets_source(store: ReadModelStore,
                             heads: Callable[[], Mapping[int, int]] | None = None) -> Source:
    """Per (read model, partition): the offset applied, and the lag when `heads` (partition → its last
    offset, e.g. the topic's end offsets − 1) is given. Nothing until the offsets table exists."""

    def read() -> Samples:
        if not table_exists(store, OFFSETS_TABLE):
            return {}
        rows = store.query(f'SELECT name, partition, "offset" FROM {OFFSETS_TABLE}')
        found: dict[str, list[tuple[Sequence[str], float]]] = {
            PROJECTION_OFFSET.name: [((name, str(partition)), offset) for name, partition, offset in rows]}
        if heads is not None:
            last = heads()
            found[PROJECTION_LAG.name] = [((name, str(partition)), max(last[partition] - offset, 0))
                                          for name, partition, offset in rows if partition in last]
        return found
    return Source("partition_offsets", (PROJECTION_OFFSET, PROJECTION_LAG), read)


def consumer_group_source(read: Callable[[], Mapping[tuple[str, int], int]] = dict) -> Source:
    """Consumer-group lag from `read`: (group, partition) → messages not yet committed. The hook for
    `crm projections consume` (part *consumer*): until its function is passed in, the gauge has no samples."""
    return Source("consumer_groups", (CONSUMER_LAG,), lambda: {
        CONSUMER_LAG.name: [((group, str(partition)), lag) for (group, partition), lag in read().items()]})


def rebuild_source(store: ReadModelStore) -> Source:
    """Progress of `crm projections rebuild`: the positions of the models it rebuilds against the log's size
    when it started (services.projection_runtime.rebuild_record). A rebuild resets positions to 0 and
    applies the log in order, so a position is the number of events applied."""

    def read() -> Samples:
        if not table_exists(store, REBUILDS.name):
            return {}
        found = rebuilds(store)
        return {REBUILD_PROGRESS.name: [((r.name,), r.progress) for r in found],
                REBUILD_APPLIED.name: [((r.name,), r.applied) for r in found],
                REBUILD_TOTAL.name: [((r.name,), r.total) for r in found],
                REBUILD_RUNNING.name: [((r.name,), int(r.running)) for r in found]}
    return Source("rebuilds", (REBUILD_PROGRESS, REBUILD_APPLIED, REBUILD_TOTAL, REBUILD_RUNNING), read)


def table_exists(store: ReadModelStore, name: str) -> bool:
    """A catalog lookup (tables another part or command creates later)."""
    if store.kind == "postgresql":
        return bool(store.query("SELECT to_regclass(?) IS NOT NULL", (name,))[0][0])
    return bool(store.query("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))[0][0])


def standard_registry(app: CrmApplication | ShardedApplication, store: ReadModelStore, read_models: Sequence[str],
                      relays: Sequence[str]) -> MetricsRegistry:
    """The sources of one database or of shards (`app` a ShardedApplication), with this process's instruments:
    what `crm serve` exposes."""
    return MetricsRegistry([
        read_models_source(app, store, read_models, whole_log=not isinstance(app, ShardedApplication)),
        relay_source(relay_positions(app, store, relays)),
        partition_offsets_source(store),
        consumer_group_source(),
        rebuild_source(store),
    ], instruments())
