"""The Kafka path of the read models in tests: relay a log to a topic, feed read models from it with
consumer-group members (threads here, `crm projections consume` processes elsewhere), and compare what they
answer with a clean rebuild from the log."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from gateways.kafka.projection_consumer import ProjectionConsumer, consumer_for, lag
from gateways.kafka.relay import KafkaRelay, producer_for
from services.application import CrmApplication
from services.projection_runtime.partitioned import PartitionedProjector, read_offsets
from services.projection_runtime.projector import Projector
from services.projection_runtime.registry import READ_MODELS, summaries
from services.projection_runtime.replay import replay_until
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.support.equivalence import KINDS, SEED_OPERATIONS, funnel_answers

from tests.support import running_services as services

FAST_SESSION_MS = 6000  # the broker's minimum (group.min.session.timeout.ms): a dead member is noticed soonest


def random_history(seed: int, size: int) -> list[tuple[str, int, int, bool]]:
    """`size` operations of the equivalence generator's kinds (tests/support/equivalence.py), reproducible."""
    rng = random.Random(seed)
    return SEED_OPERATIONS + [(rng.choice(KINDS), rng.randint(0, 50), rng.randint(0, 480), False)
                              for _ in range(size)]


def relay_all(app: CrmApplication, store: ReadModelStore, bootstrap: str, topic: str) -> None:
    """Publish the whole log to `topic`."""
    producer = producer_for(bootstrap)
    try:
        relay = KafkaRelay(app, store, producer, topic=topic)
        while relay.run_batch():
            pass
    finally:
        producer.close()


def relay_every_shard(crm: Any, store: ReadModelStore, bootstrap: str, topic: str) -> None:
    """`crm relay --shard N` for each shard of the router `crm`, once: each its log, to the partitions it owns."""
    producer = producer_for(bootstrap)
    try:
        for shard, app in enumerate(crm.apps):
            owned = [p for p, owner in sorted(crm.shard_map.items()) if owner == shard]
            relay = KafkaRelay(app, store, producer, topic=topic, shard=shard, partitions=owned)
            while relay.run_batch():
                pass
    finally:
        producer.close()


def partitioned(store: ReadModelStore) -> PartitionedProjector:
    return PartitionedProjector(store, [model() for model in READ_MODELS.values()])


def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return consumer.end_offsets(partitions)
    finally:
        consumer.close()


def caught_up(store: ReadModelStore, ends: dict[TopicPartition, int]) -> bool:
    """Every read model has applied every partition up to `ends` (read from the read store)."""
    return not lag(read_offsets(store, list(READ_MODELS)), ends, list(READ_MODELS))


@contextmanager
def members(app: CrmApplication, bootstrap: str, topic: str, group: str, count: int,
            poll_records: Callable[[int], int] = lambda n: 500) -> Iterator[list[ProjectionConsumer]]:
    """`count` group members running in threads, each with its own read-store connection; stopped (leaving
    the group) afterwards."""
    stop, threads, workers, stores = threading.Event(), [], [], []
    for n in range(count):
        store = ReadModelStore(app.database)
        stores.append(store)
        worker = ProjectionConsumer(app.mapper, partitioned(store),
                                    consumer_for(bootstrap, group, poll_records(n), FAST_SESSION_MS), topic)
        workers.append(worker)
        threads.append(threading.Thread(target=worker.run, args=(stop,), name=f"member-{n}", daemon=True))
    for thread in threads:
        thread.start()
    try:
        yield workers
    finally:
        stop.set()
        for thread, worker in zip(threads, workers):
            thread.join(timeout=30)
            worker.consumer.close()
        for store in stores:
            store.close()


def wait_until(condition: Callable[[], bool], timeout: float, what: str, logs: Sequence[Path] = ()) -> None:
    """Wait for `condition`; on time-out fail with the tails of the `logs` of the processes involved."""
    deadline = time.monotonic() + timeout
    while not _holds(condition):
        assert time.monotonic() < deadline, f"timed out waiting for {what}" + "".join(
            f"\n--- {log.name}:\n{log.read_text(errors='replace')[-3000:]}" for log in logs)
        time.sleep(0.1)


def _holds(condition: Callable[[], bool]) -> bool:
    try:
        return condition()
    except Exception:  # the database or broker coming back
        return False


def answers(app: CrmApplication, store: ReadModelStore, instants: list[datetime]) -> dict[datetime, Any]:
    return {as_of: (funnel_answers(app, store, as_of), _without_tie_breaks(summaries(app, store, as_of)))
            for as_of in instants}


def _without_tie_breaks(answers: dict[str, Any]) -> dict[str, Any]:
    """Each customer's timeline with its entries of one instant in a fixed order: the log's projector breaks
    ties by log position, which consumers of partitions do not have (no global order, ../shared/SCALE.md)."""
    timelines = {customer: sorted(entries, key=lambda e: sorted(e.items()))
                 for customer, entries in answers["timeline"].items()}
    return {**answers, "timeline": timelines}


@contextmanager
def rebuilt(app: CrmApplication, postgres_url: str) -> Iterator[ReadModelStore]:
    """The read models rebuilt from the whole log by the log's projector, in a database of their own."""
    with services.temporary_database(postgres_url) as url:
        store = ReadModelStore(database_from_url(url))
        try:
            Projector(app, store, [model() for model in READ_MODELS.values()]).catch_up()
            yield store
        finally:
            store.close()


def assert_equal_to_rebuild(app: CrmApplication, live: ReadModelStore, postgres_url: str,
                            instants: list[datetime]) -> None:
    with rebuilt(app, postgres_url) as clean:
        expected = answers(app, clean, instants)
    got = answers(app, live, instants)
    for as_of in instants:
        assert got[as_of][0] == expected[as_of][0], f"funnel differs from a rebuild at {as_of}"
        for name in expected[as_of][1]:
            assert got[as_of][1][name] == expected[as_of][1][name], f"{name} differs from a rebuild at {as_of}"


CRM = [sys.executable, "-m", "gateways.cli.main"]


def start_member(log: Path, url: str, bootstrap: str, topic: str, group: str, batch: int) -> subprocess.Popen:
    """`crm projections consume` as a process of its own (output in `log`)."""
    return subprocess.Popen([*CRM, "projections", "consume", "--topic", topic, "--group", group, "--batch",
                             str(batch), "--session-timeout", str(FAST_SESSION_MS / 1000)],
                            cwd=services.REPO_ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, "CRM_DATABASE_URL": url, "CRM_KAFKA_BOOTSTRAP": bootstrap})


def stop_member(process: subprocess.Popen, log: Path) -> None:
    """SIGTERM: the member leaves the group and exits 0."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, log.read_text(errors="replace")[-4000:]


def applied(store: ReadModelStore) -> int:
    """How many records the read models have applied, summed over partitions (of the slowest read model)."""
    offsets = read_offsets(store, list(READ_MODELS))
    return min(sum(offset + 1 for (n, _), offset in offsets.items() if n == name) for name in READ_MODELS)


def assert_equal_to_replay(app: CrmApplication, live: ReadModelStore, instants: list[datetime]) -> None:
    """The consumed read models answer as the read models replayed from the log up to each instant."""
    got = answers(app, live, instants)
    for as_of in instants:
        replayed = replay_until(app, [model() for model in READ_MODELS.values()], as_of)
        try:
            assert got[as_of] == answers(app, replayed, [as_of])[as_of], f"differs from the replay to {as_of}"
        finally:
            replayed.close()
