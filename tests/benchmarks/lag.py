"""Projection lag during a 10× write burst, and end-to-end command → read model latency.

Commands (stage changes on a few deals, from one thread of this process) arrive at a steady rate, then at
ten times that rate, then at the steady rate again, while the read models are kept current by separate
processes: today the single-node follower (`crm projections follow --poll 0.05`, crm serve's poll). A
sampler thread reads the lowest position of the read models every `SAMPLE` seconds. A command's position
is the one its answer carries (`app.last_write.position`, what the HTTP answer sends as `X-Log-Position`);
its end-to-end latency is from the command returning to the first sample at or past that position
(so it includes up to one SAMPLE of the sampler's own resolution). Lag at an instant is the highest
position accepted so far minus the read models' position.

Consumers (`consumer_lag_burst`, when gateways/kafka/projection_consumer.py is on the branch): the same
burst into a fresh log published by `crm relay` to a fresh 64-partition topic and applied by 1, 2 and 3
`crm projections consume` processes of one group. Progress is then per partition (the read models' lowest
stored offset in each, `projection_offsets`); a command's event is the k-th of the run in its deal's
partition (deals of 20 customers: spread over partitions), applied once that partition's offset has moved
k past where it stood; lag = commands accepted − applied, summed over partitions.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg

from domain.base import Meta
from projections.funnel import percentile
from services.application import CrmApplication
from services.commands import ChangeStage
from services.settings import database_from_url
from tests.benchmarks.delivery import STAGES, open_deals
from tests.benchmarks.harness import REPO_ROOT, Bench, Metric, log, ratio
from tests.benchmarks.writers import cpu_times

BURST_NAME, LATENCY_NAME, CONSUMER_NAME = "projection_lag_burst", "command_to_read_model", "consumer_lag_burst"
BURST_FACTOR = 10
SAMPLE = 0.01  # seconds between the sampler's looks at the read models' position
FOLLOW_POLL = "0.05"  # crm serve's background projector polls as often (services/projection_runtime/background.py)
CONSUMERS = (1,)  # follower processes (one at most: it follows one log position)
DEALS = 20
CATCH_UP_SECONDS = 60


@dataclass
class Timeline:
    """What the run saw: commands (monotonic time accepted, position) and samples (time, read position)."""

    accepted: list[tuple[float, int]] = field(default_factory=list)
    samples: list[tuple[float, int]] = field(default_factory=list)


class Sampler(threading.Thread):
    """Samples the lowest read-model position every SAMPLE seconds (psycopg waits without the GIL)."""

    def __init__(self, url: str, timeline: Any) -> None:
        super().__init__(daemon=True)
        self.url, self.timeline, self.stop = url, timeline, threading.Event()

    def sample(self, connection: psycopg.Connection[Any]) -> Any:
        row = connection.execute("SELECT min(position) FROM projection_positions").fetchone()
        return int(row[0] or 0)

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            while not self.stop.is_set():
                self.timeline.samples.append((time.monotonic(), self.sample(connection)))
                time.sleep(SAMPLE)


def _consumers(url: str, count: int, poll: str = FOLLOW_POLL) -> list[subprocess.Popen[bytes]]:
    """Start `count` processes keeping the read models current (the follower: exactly one)."""
    if count != 1:
        raise NotImplementedError("several consumers wait for `crm projections consume` (issue 13)")
    return [subprocess.Popen([sys.executable, "-m", "gateways.cli.main", "projections", "follow", "--poll",
                              poll], cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=tempfile.TemporaryFile(),
                             env={**os.environ, "CRM_DATABASE_URL": url})]


def _wait_caught_up(url: str, head: int, processes: list[subprocess.Popen[bytes]]) -> float:
    """Seconds until the read models reach `head` (their tables made by the follower first)."""
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as connection:
        while time.monotonic() - started < CATCH_UP_SECONDS:
            if any(process.poll() is not None for process in processes):
                raise RuntimeError(f"a follower exited with status {processes[0].returncode}")
            try:
                row = connection.execute("SELECT min(position) FROM projection_positions").fetchone()
                if row[0] is not None and row[0] >= head:
                    return time.monotonic() - started
            except psycopg.errors.UndefinedTable:
                pass  # the follower has not made its tables yet
            time.sleep(0.05)
    raise RuntimeError(f"the read models did not reach position {head} within {CATCH_UP_SECONDS} s")


def _on_schedule(phases: list[tuple[int, float]]) -> Iterator[int]:
    """0, 1, 2 … at each phase's rate (per second) for its seconds, on schedule (late ones at once)."""
    n = 0
    for rate, seconds in phases:
        started = time.monotonic()
        for k in range(round(rate * seconds)):
            time.sleep(max(0.0, started + k / rate - time.monotonic()))
            yield n
            n += 1


def _send(app: CrmApplication, deals: list[UUID], phases: list[tuple[int, float]], timeline: Timeline) -> None:
    """Stage changes at each phase's rate (commands/s) for its seconds."""
    meta = Meta(actor="benchmark")
    for n in _on_schedule(phases):
        deal = deals[n % len(deals)]
        app.change_stage(ChangeStage(deal, STAGES[(n // len(deals)) % 2], "压测"), meta)
        timeline.accepted.append((time.monotonic(), app.last_write.position))


def latencies_ms(timeline: Timeline, since: float, until: float) -> list[float]:
    """Command → read model, of the commands accepted in [since, until)."""
    found, samples, s = [], timeline.samples, 0
    for at, position in timeline.accepted:
        while s < len(samples) and (samples[s][0] < at or samples[s][1] < position):
            s += 1
        if since <= at < until and s < len(samples):
            found.append((samples[s][0] - at) * 1000)
    return found


def max_lag(timeline: Timeline, since: float, until: float) -> int:
    """The largest (highest accepted position − read position) at a sample in [since, until)."""
    lag, head, a = 0, 0, 0
    for at, position in timeline.samples:
        while a < len(timeline.accepted) and timeline.accepted[a][0] <= at:
            head = timeline.accepted[a][1]
            a += 1
        if since <= at < until:
            lag = max(lag, head - position)
    return lag


def _phases(sampler: Sampler, send: Callable[[list[tuple[int, float]]], None], timeline: Any, rate: int,
            seconds: float) -> tuple[float, float, float, float, float, float]:
    """Steady, burst (×BURST_FACTOR), steady, sampled: (begun, idle and total CPU time, burst from, burst to,
    ended)."""
    sampler.start()
    begun, before = time.monotonic(), cpu_times()
    send([(rate, seconds), (rate * BURST_FACTOR, seconds), (rate, seconds)])
    idle, total = (now - then for now, then in zip(cpu_times(), before))
    burst_from = timeline.accepted[round(rate * seconds)][0]
    burst_to = timeline.accepted[round(rate * seconds) + round(rate * BURST_FACTOR * seconds) - 1][0]
    return begun, idle, total, burst_from, burst_to, time.monotonic()


def _stop(sampler: Sampler | None, processes: list[subprocess.Popen[bytes]], app: CrmApplication) -> None:
    if sampler and sampler.ident is not None:  # started
        sampler.stop.set()
        sampler.join()
    for process in processes:
        process.terminate()
        process.wait(30)
    app.close()


def run_burst(url: str, consumers: int, rate: int, seconds: float, poll: str = FOLLOW_POLL) -> dict[str, Any]:
    """One run: steady, burst (×BURST_FACTOR), steady; the lag and latencies of each phase."""
    app = CrmApplication(database_from_url(url))
    app.ensure_default_pipelines(Meta(actor="system"))
    deals = open_deals(app, DEALS)
    processes = _consumers(url, consumers, poll)
    timeline, sampler = Timeline(), None
    try:
        _wait_caught_up(url, app.last_write.position, processes)
        sampler = Sampler(url, timeline)
        begun, idle, total, burst_from, burst_to, ended = _phases(
            sampler, lambda phases: _send(app, deals, phases, timeline), timeline, rate, seconds)
        settle = _wait_caught_up(url, app.last_write.position, processes)
    finally:
        _stop(sampler, processes, app)
    steady = latencies_ms(timeline, begun, burst_from)
    burst = latencies_ms(timeline, burst_from, burst_to)
    burst_seconds = burst_to - burst_from
    return {"consumers": consumers, "steady_rate": rate, "burst_rate": rate * BURST_FACTOR,
            "burst_achieved_rate": round(round(rate * BURST_FACTOR * seconds) / burst_seconds) if burst_seconds else None,
            "steady_p50_ms": round(percentile(steady, 0.5) or 0, 1), "steady_p99_ms": round(percentile(steady, 0.99) or 0, 1),
            "burst_p50_ms": round(percentile(burst, 0.5) or 0, 1), "burst_p99_ms": round(percentile(burst, 0.99) or 0, 1),
            "burst_max_lag_events": max_lag(timeline, burst_from, ended),
            "steady_max_lag_events": max_lag(timeline, begun, burst_from),
            "settle_seconds_after_last": round(settle, 2), "commands": len(timeline.accepted),
            "machine_idle": round(idle / total, 2) if total else None,
            "all": latencies_ms(timeline, begun, ended)}


def measure(bench: Bench) -> list[Metric]:
    plan = bench.plan
    runs = []
    for consumers in CONSUMERS:
        log(f"lag: {consumers} consumer(s), {plan.lag_rate}/s, ×{BURST_FACTOR} burst, {plan.lag_seconds} s a phase")
        runs.append(run_burst(bench.database(), consumers, plan.lag_rate, plan.lag_seconds))
    every = [latency for run in runs for latency in run.pop("all")]
    first = runs[0]
    shape = {"runs": runs, "seconds_per_phase": plan.lag_seconds, "sample_s": SAMPLE, "follower_poll_s": float(FOLLOW_POLL),
             "consumers": "the single-node follower (crm projections follow); Kafka consumers: consumer_lag_burst",
             "path": "app.change_stage returns (position = X-Log-Position) → follower process polls the log, "
                     "applies, commits its positions → a sampler sees the read models' lowest position"}
    p99 = percentile(every, 0.99) or 0
    return [
        Metric(BURST_NAME, first["burst_max_lag_events"], "events (max lag in the burst)",
               "p99 command → read model at the steady rate, same run", first["steady_p99_ms"],
               ratio(first["burst_p99_ms"], first["steady_p99_ms"]),
               "none set (informational; ratio = burst p99 ÷ steady p99)", None, shape),
        Metric(LATENCY_NAME, round(p99, 1), "ms (p99)", None, None, None, "none set (informational)", None,
               {"p50_ms": round(percentile(every, 0.5) or 0, 1), "commands": len(every),
                "consumers": first["consumers"], "path": shape["path"]}),
        *(measure_consumers(bench) if consumers_available() else []),
    ]


# --- consumers of Kafka (issue 13) -----------------------------------------------------------------------

def consumers_available() -> bool:
    """`crm projections consume` (helper "consumer" of issue 13) is on this branch."""
    return importlib.util.find_spec("gateways.kafka.projection_consumer") is not None


def metric_names() -> tuple[str, ...]:
    return (BURST_NAME, LATENCY_NAME, CONSUMER_NAME) if consumers_available() else (BURST_NAME, LATENCY_NAME)


@dataclass
class PartitionTimeline:
    """Commands (time accepted, partition, its k-th of the run there) and samples (time, partition → offset)."""

    accepted: list[tuple[float, int, int]] = field(default_factory=list)
    samples: list[tuple[float, dict[int, int]]] = field(default_factory=list)


def partition_offsets(connection: psycopg.Connection[Any]) -> dict[int, int]:
    """Each partition's lowest stored offset over the read models (a read model without a row there: −1)."""
    names = connection.execute("SELECT count(DISTINCT name) FROM projection_offsets").fetchone()[0]
    rows = connection.execute('SELECT "partition", min("offset"), count(*) FROM projection_offsets '
                              'GROUP BY "partition"').fetchall()
    return {int(p): int(low) if count == names else -1 for p, low, count in rows}


class PartitionSampler(Sampler):
    """Samples each partition's lowest stored offset."""

    def sample(self, connection: psycopg.Connection[Any]) -> Any:
        return partition_offsets(connection)


def _kafka_side(url: str, bootstrap: str, topic: str, consumers: int) -> list[subprocess.Popen[bytes]]:
    """`crm relay` to `topic` and `consumers` members of a fresh group."""
    env = {**os.environ, "CRM_DATABASE_URL": url}
    crm = [sys.executable, "-m", "gateways.cli.main"]
    relay = subprocess.Popen([*crm, "relay", "--bootstrap", bootstrap, "--topic", topic], cwd=REPO_ROOT,
                             stdout=subprocess.DEVNULL, stderr=tempfile.TemporaryFile(), env=env)
    group = f"crm-bench-{os.urandom(4).hex()}"
    return [relay, *(subprocess.Popen([*crm, "projections", "consume", "--bootstrap", bootstrap, "--topic", topic,
                                       "--group", group], cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                                      stderr=tempfile.TemporaryFile(), env=env) for _ in range(consumers))]


def _wait_applied(url: str, bootstrap: str, topic: str, processes: list[subprocess.Popen[bytes]],
                  published_at_least: int) -> dict[int, int]:
    """Until the topic holds at least `published_at_least` messages, stops growing, and every partition's
    messages are applied; returns the partitions' offsets then."""
    from kafka import KafkaConsumer, TopicPartition

    reader = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    started, last = time.monotonic(), -1
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            while time.monotonic() - started < CATCH_UP_SECONDS:
                if any(process.poll() is not None for process in processes):
                    raise RuntimeError("the relay or a consumer exited")
                partitions = reader.partitions_for_topic(topic) or set()
                ends = reader.end_offsets([TopicPartition(topic, p) for p in partitions]) if partitions else {}
                total = sum(ends.values())
                try:
                    applied = partition_offsets(connection)
                except psycopg.errors.UndefinedTable:
                    applied = {}
                done = all(applied.get(tp.partition, -1) >= end - 1 for tp, end in ends.items() if end)
                if total >= published_at_least and total == last and done:
                    return applied
                last = total
                time.sleep(0.5)
    finally:
        reader.close()
    raise RuntimeError(f"the consumers did not apply the topic within {CATCH_UP_SECONDS} s")


def _deal_of_a_new_customer(app: CrmApplication) -> tuple[UUID, UUID]:
    """(deal, its customer): the relay publishes a deal's events in its customer's home partition."""
    from services.commands import OpenDeal, RegisterCustomer

    meta = Meta(actor="benchmark")
    customer = app.register_customer(RegisterCustomer("压测客户", "华东", "制造业", "web", company="压测有限公司"), meta)
    return app.open_deal(OpenDeal(customer, "压测商机", "1000", owner="benchmark"), meta), customer


def _send_partitioned(app: CrmApplication, customers: dict[UUID, UUID], phases: list[tuple[int, float]],
                      timeline: PartitionTimeline) -> None:
    from domain.partitions import partition_of

    meta, counts, deals = Meta(actor="benchmark"), {}, list(customers)
    for n in _on_schedule(phases):
        deal = deals[n % len(deals)]
        app.change_stage(ChangeStage(deal, STAGES[(n // len(deals)) % 2], "压测"), meta)
        partition = partition_of(customers[deal])
        counts[partition] = counts.get(partition, 0) + 1
        timeline.accepted.append((time.monotonic(), partition, counts[partition]))


def partition_latencies_ms(timeline: PartitionTimeline, start: dict[int, int], since: float, until: float
                           ) -> list[float]:
    """Command → read model of the commands accepted in [since, until): to the first sample where its
    partition's offset moved past it."""
    found = []
    for at, partition, k in timeline.accepted:
        if not since <= at < until:
            continue
        seen = next((t for t, offsets in timeline.samples
                     if t >= at and offsets.get(partition, -1) - start.get(partition, -1) >= k), None)
        if seen is not None:
            found.append((seen - at) * 1000)
    return found


def partition_max_lag(timeline: PartitionTimeline, start: dict[int, int], since: float, until: float) -> int:
    lag, a, accepted = 0, 0, 0
    for t, offsets in timeline.samples:
        while a < len(timeline.accepted) and timeline.accepted[a][0] <= t:
            accepted, a = accepted + 1, a + 1
        if since <= t < until:
            applied = sum(max(0, offsets.get(p, -1) - start.get(p, -1)) for p in offsets)
            lag = max(lag, accepted - applied)
    return lag


def run_consumer_burst(url: str, bootstrap: str, consumers: int, rate: int, seconds: float) -> dict[str, Any]:
    """One run with `consumers` members: steady, burst (×BURST_FACTOR), steady."""
    app = CrmApplication(database_from_url(url))
    app.ensure_default_pipelines(Meta(actor="system"))
    deals = dict(_deal_of_a_new_customer(app) for _ in range(DEALS))  # a customer each: spread over partitions
    topic = f"crm-bench-events-{os.urandom(4).hex()}"
    processes = _kafka_side(url, bootstrap, topic, consumers)
    timeline, sampler = PartitionTimeline(), None
    try:
        start = _wait_applied(url, bootstrap, topic, processes, 1)
        sampler = PartitionSampler(url, timeline)
        begun, idle, total, burst_from, burst_to, ended = _phases(
            sampler, lambda phases: _send_partitioned(app, deals, phases, timeline), timeline, rate, seconds)
        _wait_applied(url, bootstrap, topic, processes, 0)
        settle = time.monotonic() - ended
    finally:
        _stop(sampler, processes, app)
        _delete_topic(bootstrap, topic)
    burst = partition_latencies_ms(timeline, start, burst_from, burst_to)
    every = partition_latencies_ms(timeline, start, begun, ended)
    return {"consumers": consumers, "burst_rate": rate * BURST_FACTOR,
            "burst_max_lag_events": partition_max_lag(timeline, start, burst_from, ended),
            "burst_p50_ms": round(percentile(burst, 0.5) or 0, 1), "burst_p99_ms": round(percentile(burst, 0.99) or 0, 1),
            "p50_ms": round(percentile(every, 0.5) or 0, 1), "p99_ms": round(percentile(every, 0.99) or 0, 1),
            "settle_seconds_after_last": round(settle, 2), "commands": len(timeline.accepted), "seen": len(every),
            "machine_idle": round(idle / total, 2) if total else None}


def _delete_topic(bootstrap: str, topic: str) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([topic])
    except Exception:  # noqa: BLE001 - a topic left behind is only clutter on the test broker
        log(f"could not delete topic {topic}")
    finally:
        admin.close()


def measure_consumers(bench: Bench) -> list[Metric]:
    plan = bench.plan
    runs = []
    for consumers in plan.consumer_levels:
        log(f"lag: {consumers} Kafka consumer(s), {plan.lag_rate}/s, ×{BURST_FACTOR} burst")
        runs.append(run_consumer_burst(bench.database(), bench.bootstrap, consumers, plan.lag_rate, plan.lag_seconds))
    one, last = runs[0], runs[-1]
    return [Metric(CONSUMER_NAME, last["burst_max_lag_events"],
                   f"events (max lag in the burst, {last['consumers']} consumers)",
                   f"the same burst with {one['consumers']} consumer(s), same run", one["burst_max_lag_events"],
                   ratio(last["burst_max_lag_events"], one["burst_max_lag_events"]), "none set (informational)", None,
                   {"runs": runs, "p99_ms_by_consumers": {str(r["consumers"]): r["p99_ms"] for r in runs},
                    "seconds_per_phase": plan.lag_seconds, "steady_rate": plan.lag_rate,
                    "path": "app.change_stage → crm relay (one process, 64-partition topic) → crm projections "
                            "consume × N (one group) → projection_offsets per (read model, partition)"})]
