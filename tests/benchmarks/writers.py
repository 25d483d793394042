"""Concurrent writers: saves/s and p50/p99 of real commands at 1, 4 and 16 writer processes, each compared
with plain INSERT + COMMIT of a comparable row at the same concurrency, in the same run.

Why processes: `crm serve` runs one process per worker, and a thread per writer would measure the GIL
(a stage change costs ≈ 1 ms of Python) rather than the log's lock. A pool of writer processes is started
once (each opens its application and a bare connection before any clock starts) and every round is given
to the first N of them with a shared start instant (`time.monotonic`, one clock for every process on
Linux). Rounds alternate the command path and the baseline at each level, so that a neighbour's load
falls on both alike: compare `ratio`s, not the absolute rates, across machines and runs.

The baseline is what the database can do without the log's rules: one autocommit INSERT of a row shaped
like a stored event (uuid, version, topic, state of the same size; a bigserial key and the same unique
index) into an unlocked table, so concurrent commits share WAL flushes (group commit). The command path
also loads the deal, runs the domain and takes the log's EXCLUSIVE lock through its commit (one writer at
a time per log: services/storage/postgres_recorder.py).

Each level reports the writers' CPU per save and PostgreSQL's (the backends of the round's databases, read
from /proc when the server runs here): on a machine without idle CPU, their sum bounds saves/s.

Sharded: the same rounds on 3 shard databases through `ShardedApplication` (services/sharding/), once
that package is present (`sharding_available`), as a second metric compared with 1 shard in the same run.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import psycopg
from psycopg import sql

from projections.funnel import percentile
from tests.benchmarks.harness import Bench, Metric, log, ratio

NAME, SHARDED_NAME = "writers_saves", "writers_saves_sharded"
SHARDS = 3
GOAL = 3.0  # issue 13: saves/s at 16 writers on 3 shards ÷ on 1 shard
LEVELS = (1, 4, 16)
DEALS_PER_WRITER = 4
START_AHEAD = 0.3  # seconds between handing out a round and its start: every writer is waiting by then
BASELINE_TABLE = "bench_plain_inserts"
STAGES = ("first_contact", "needs_analysis")  # as tests/benchmarks/delivery.py: each save moves the deal


@dataclass(frozen=True)
class Round:
    """What one level of one path gave: saves, wall seconds and every save's latency (ms)."""

    path: str
    writers: int
    saves: int
    seconds: float
    latencies_ms: list[float]
    cpu_seconds: float = 0.0  # the writer processes' own CPU time (user + system) in the round
    machine_idle: float | None = None  # the machine's idle share of CPU time during the round (/proc/stat)
    server_cpu_seconds: float | None = None  # the PostgreSQL backends of the round's databases (local server)

    @property
    def rate(self) -> float:
        return self.saves / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {"writers": self.writers, "saves_per_s": round(self.rate), "saves": self.saves,
                "p50_ms": round(percentile(self.latencies_ms, 0.5) or 0, 2),
                "p99_ms": round(percentile(self.latencies_ms, 0.99) or 0, 2),
                "writer_cpu_ms_per_save": round(1000 * self.cpu_seconds / self.saves, 3) if self.saves else None,
                "server_cpu_ms_per_save": round(1000 * self.server_cpu_seconds / self.saves, 3)
                if self.saves and self.server_cpu_seconds is not None else None,
                "machine_idle": None if self.machine_idle is None else round(self.machine_idle, 2)}


def cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of the whole machine so far; (0, 0) where /proc/stat is missing."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return 0, 0
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; user … steal


def backend_pids(urls: Sequence[str]) -> list[int]:
    """The server processes of every session on the databases of `urls` (this query's own left out)."""
    names = [urlsplit(url).path.lstrip("/") for url in urls]
    with psycopg.connect(urls[0], autocommit=True) as connection:
        return [row[0] for row in connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s) AND pid <> pg_backend_pid()", (names,))]


def process_cpu(pids: Sequence[int]) -> dict[int, float]:
    """User + system CPU seconds of each of these processes so far (/proc; none where the server runs on
    another machine): PostgreSQL's own share of a save, which the writers' CPU time does not include."""
    seconds = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


def server_cpu(urls: Sequence[str], before: dict[int, float]) -> float | None:
    """CPU seconds the backends of `urls` spent since `before` (a backend started since: all of its own)."""
    after = process_cpu(backend_pids(urls))
    return sum(spent - before.get(pid, 0.0) for pid, spent in after.items()) if after else None


# --- in each writer process ------------------------------------------------------------------------------

def _databases(urls: Sequence[str]) -> list[Any]:
    """The databases of `urls`, each with a pool of one connection (a writer saves one command at a time;
    16 writers × 3 shards × the default 5 would take most of the server's max_connections)."""
    from services.settings import database_from_url

    return [dataclasses.replace(database, env={**database.env, "POSTGRES_POOL_SIZE": "1"})
            for database in map(database_from_url, urls)]


def open_app(urls: Sequence[str]) -> Any:
    """The command side the writers use: one log, or (several URLs) the sharded application."""
    if len(urls) == 1:
        from services.application import CrmApplication

        return CrmApplication(_databases(urls)[0])
    from services.sharding.router import ShardedApplication  # type: ignore[import-not-found,unused-ignore]

    return ShardedApplication(_databases(urls))


def _writer(urls: list[str], deals: list[UUID], state_size: int, pipe: Connection) -> None:
    """A writer process: opens everything, then runs the rounds it is given until told None."""
    from domain.base import Meta
    from services.commands import ChangeStage

    app = open_app(urls)
    raw: psycopg.Connection[Any] | None = None  # opened for the first plain round (connections are few)
    insert = sql.SQL("INSERT INTO {} (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)"
                     ).format(sql.Identifier(BASELINE_TABLE))
    meta, state, mine = Meta(actor="benchmark"), os.urandom(state_size), uuid4()
    done = {"command": 0, "plain": 0}  # saves so far: the next stage of each deal, the next version

    def command(n: int) -> None:
        app.handle(ChangeStage(deals[n % len(deals)], STAGES[(n // len(deals)) % 2], "压测"), meta)

    def plain(n: int) -> None:
        assert raw is not None
        raw.execute(insert, (mine, n, "bench:Plain", state), prepare=True)

    pipe.send("ready")
    while (order := pipe.recv()) is not None:
        path, start_at, stop_at = order
        save = command if path == "command" else plain
        if path == "plain" and raw is None:
            raw = psycopg.connect(urls[0], autocommit=True)
        latencies: list[float] = []
        time.sleep(max(0.0, start_at - time.monotonic()))
        cpu = time.process_time()
        try:
            while (started := time.monotonic()) < stop_at:
                save(done[path])
                latencies.append((time.monotonic() - started) * 1000)
                done[path] += 1
        except Exception as error:  # noqa: BLE001 - the benchmark process reports it
            pipe.send(f"{type(error).__name__}: {error}")
            continue
        pipe.send((latencies, time.process_time() - cpu))
    app.close()
    if raw is not None:
        raw.close()


# --- in the benchmark process ----------------------------------------------------------------------------

class WriterPool:
    """One writer process per deal list, writer i on the log(s) `targets[i % len(targets)]`; rounds on the
    first N writers (so N writers spread evenly over the targets)."""

    def __init__(self, targets: list[list[str]], deals: list[list[UUID]], state_size: int) -> None:
        context = multiprocessing.get_context("spawn")  # the benchmark process holds threads and connections
        self.pipes: list[Connection] = []
        self.processes = []
        self.urls = sorted({url for target in targets for url in target})
        for n, mine in enumerate(deals):
            parent, child = context.Pipe()
            process = context.Process(target=_writer, args=(targets[n % len(targets)], mine, state_size, child),
                                      daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)
        for pipe in self.pipes:
            if pipe.recv() != "ready":
                raise RuntimeError("a writer process did not start")

    def round(self, path: str, writers: int, seconds: float) -> Round:
        start_at = time.monotonic() + START_AHEAD
        for pipe in self.pipes[:writers]:
            pipe.send((path, start_at, start_at + seconds))
        time.sleep(max(0.0, start_at - time.monotonic()))
        idle, total = cpu_times()
        server = process_cpu(backend_pids(self.urls))
        answers = [pipe.recv() for pipe in self.pipes[:writers]]
        idle, total = (now - before for now, before in zip(cpu_times(), (idle, total)))
        server_seconds = server_cpu(self.urls, server)
        if failed := [answer for answer in answers if isinstance(answer, str)]:
            raise RuntimeError(f"{len(failed)} of {writers} writers failed: {failed[0]}")
        latencies = [latency for answer, _ in answers for latency in answer]
        return Round(path, writers, len(latencies), seconds, latencies, sum(cpu for _, cpu in answers),
                     idle / total if total else None, server_seconds)

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(None)
        for process in self.processes:
            process.join(30)


def baseline_table(url: str) -> None:
    """The plain table, in the application role's own schema: a stored event's columns, key and index."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (notification_id bigserial PRIMARY KEY, originator_id uuid NOT NULL, "
            "originator_version bigint NOT NULL, topic text NOT NULL, state bytea, "
            "UNIQUE (originator_id, originator_version))").format(sql.Identifier(BASELINE_TABLE)))


def stage_change_size(url: str) -> int:
    """Bytes of a stored stage change's state (sealed and compressed as the mapper stores it)."""
    from services.application import CrmApplication

    with psycopg.connect(url) as connection:
        row = connection.execute(sql.SQL("SELECT max(length(state)) FROM {} WHERE topic LIKE '%StageChanged%'").format(
            sql.Identifier(f"{CrmApplication.name.lower()}_events"))).fetchone()
    return int(row[0] or 300)


def deals_on(app: Any, count: int, shard: int | None) -> list[UUID]:
    """`count` deals of one new customer, on shard `shard` of a sharded application (customers get a random
    home partition: registered until one lands there) or anywhere (None)."""
    from domain.base import Meta
    from domain.partitions import partition_of
    from services.commands import OpenDeal, RegisterCustomer

    meta = Meta(actor="benchmark")
    while True:
        customer = app.handle(RegisterCustomer("压测客户", "华东", "制造业", "web", company="压测有限公司"), meta)
        if shard is None or app.shard_of(partition_of(customer)) == shard:
            break
    return [app.handle(OpenDeal(customer, f"压测商机 {n}", "1000", owner="benchmark"), meta) for n in range(count)]


def open_writer_deals(target: list[str], writers: int) -> list[list[UUID]]:
    """DEALS_PER_WRITER deals for each of `writers` writers, in their first stage (on shard n mod shards for
    writer n of a sharded application, so that any first N writers spread evenly); and one more deal moved
    once, so that the log holds a stage change to take the baseline row's size from."""
    from domain.base import Meta
    from services.commands import ChangeStage

    app = open_app(target)
    shards = len(target)
    try:
        app.ensure_default_pipelines(Meta(actor="system"))  # a fresh log: `crm serve` does the same at start
        deals = [deals_on(app, DEALS_PER_WRITER, n % shards if shards > 1 else None) for n in range(writers)]
        app.handle(ChangeStage(deals_on(app, 1, 0 if shards > 1 else None)[0], STAGES[1], "压测"),
                   Meta(actor="benchmark"))
    finally:
        app.close()
    return deals


def sharding_available() -> bool:
    """services/sharding/ (helper "shards" of issue 13) is on this branch."""
    return importlib.util.find_spec("services.sharding") is not None


def shard_databases(bench: Bench, shards: int) -> list[str]:
    """`shards` fresh databases as one sharded installation: each log migrated, the partition → shard table
    (the default: p on shard p mod n) created in the first, as `crm db migrate` does with CRM_SHARD_URLS."""
    from services.settings import database_from_url
    from services.sharding.shard_map import create_map  # type: ignore[import-not-found,unused-ignore]
    from tests.support.running_services import owner_url

    urls = [bench.database() for _ in range(shards)]
    create_map(database_from_url(owner_url(urls[0])), shards, urlsplit(urls[0]).username)
    return urls


def writer_pool(targets: list[list[str]], writers: int) -> WriterPool:
    """`writers` writers spread over `targets` (each a log, or a sharded application's shard URLs), with
    their deals and the baseline tables made."""
    for target in targets:
        for url in target:
            baseline_table(url)
    per_target = [open_writer_deals(target, len(range(n, writers, len(targets))))
                  for n, target in enumerate(targets)]
    deals = [per_target[n % len(targets)][n // len(targets)] for n in range(writers)]
    return WriterPool(targets, deals, stage_change_size(targets[0][0]))


def run_rounds(pool: WriterPool, levels: Sequence[int], seconds: float, paths: Sequence[str] = ("plain", "command"),
               repeats: int = 1, label: str = "") -> list[Round]:
    """Every path at every level, alternating, `repeats` times; the rounds in the order they ran."""
    rounds = []
    for _ in range(repeats):
        for writers in levels:
            for path in paths:
                done = pool.round(path, writers, seconds)
                log(f"writers{label}: {path} × {writers}: {done.rate:,.0f} saves/s, p99 {done.summary()['p99_ms']} ms")
                rounds.append(done)
    return rounds


def merged(rounds: list[Round], path: str, writers: int) -> Round:
    """The repeats of one path and level as one round."""
    mine = [r for r in rounds if r.path == path and r.writers == writers]
    idle = [r.machine_idle for r in mine if r.machine_idle is not None]
    server = [r.server_cpu_seconds for r in mine]
    return Round(path, writers, sum(r.saves for r in mine), sum(r.seconds for r in mine),
                 [latency for r in mine for latency in r.latencies_ms], sum(r.cpu_seconds for r in mine),
                 sum(idle) / len(idle) if idle else None,
                 None if None in server else sum(s for s in server if s is not None))


Levels = dict[int, tuple[Round, Round]]  # writers → (command path, plain baseline), repeats merged


def _phase(bench: Bench, targets: list[list[str]], label: str, paths: Sequence[str] = ("plain", "command")
           ) -> Levels:
    """Every level's rounds on `targets` (one log, or one sharded application's shards)."""
    plan = bench.plan
    pool = writer_pool(targets, max(plan.writer_levels))
    try:
        rounds = run_rounds(pool, plan.writer_levels, plan.writer_seconds, paths, plan.writer_repeats, label)
    finally:
        pool.close()
    return {writers: (merged(rounds, "command", writers), merged(rounds, "plain", writers))
            for writers in plan.writer_levels}


def _table(levels: Levels) -> list[dict[str, Any]]:
    return [{**c.summary(), **({"plain_saves_per_s": round(p.rate), "plain_p99_ms": p.summary()["p99_ms"],
                                "plain_machine_idle": p.summary()["machine_idle"],
                                "plain_server_cpu_ms_per_save": p.summary()["server_cpu_ms_per_save"],
                                "ratio": ratio(c.rate, p.rate)}
                               if p.saves else {})} for c, p in levels.values()]


def _scaling(levels: Levels) -> dict[str, float | None]:
    first = min(levels)
    return {f"{writers}_vs_{first}": ratio(c.rate, levels[first][0].rate) for writers, (c, _) in levels.items()}


def metric_names() -> tuple[str, ...]:
    return (NAME, SHARDED_NAME) if sharding_available() else (NAME,)


def measure(bench: Bench) -> list[Metric]:
    plan = bench.plan
    top = max(plan.writer_levels)
    one = _phase(bench, [[bench.database()]], "")
    command, plain = one[top]
    common = {"seconds_per_round": plan.writer_seconds, "repeats": plan.writer_repeats,
              "command": "ChangeStage on the writer's own deals (handle: load, domain, save under the log's lock), "
                         "one application per writer process, a pool of one connection per database"}
    metrics = [Metric(
        NAME, round(command.rate), f"saves/s at {top} writers",
        f"plain autocommit INSERT of a stored-event-shaped row into an unlocked table, {top} writers",
        round(plain.rate), ratio(command.rate, plain.rate), "none set (informational)", None,
        {"levels": _table(one), "scaling": _scaling(one), "shards": 1, **common})]
    if sharding_available():
        # Commands only: a sharded writer holds ≈ 10 connections (3 shards' pools and key stores), 16 of them
        # most of the server's max_connections (200, shared); a plain round would add one each.
        three = _phase(bench, [shard_databases(bench, SHARDS)], f" ({SHARDS} shards)", ("command",))
        sharded = three[top][0]
        gain = ratio(sharded.rate, command.rate)
        metrics.append(Metric(
            SHARDED_NAME, round(sharded.rate), f"saves/s at {top} writers on {SHARDS} shards",
            "the same writers and commands on 1 shard (writers_saves), same run", round(command.rate), gain,
            f"≥ {GOAL:g}× 1 shard at 16 writers (issue 13)", gain >= GOAL if top == 16 and gain else None,
            {"levels": _table(three), "scaling": _scaling(three), "shards": SHARDS,
             "vs_one_shard": {str(w): ratio(three[w][0].rate, one[w][0].rate) for w in plan.writer_levels},
             "vs_plain_on_one_shard": ratio(sharded.rate, plain.rate),
             "layout": f"{SHARDS} databases on the one server, ShardedApplication (services/sharding/), the "
                       "default partition → shard table; writer n's customer and deals on shard n mod "
                       f"{SHARDS}; run after the 1-shard rounds (compare machine_idle)", **common}))
    return metrics
