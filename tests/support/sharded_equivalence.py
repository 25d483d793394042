"""Equivalence over shards: random histories (tests.support.equivalence) run through a `ShardedApplication`
over 3 shards, each shard's log turned into the per-partition streams a relay per shard publishes, projected
by `PartitionedProjector` in random interleavings and batch sizes (or by concurrent consumers owning random
partitions) == a rebuild over the shards' logs merged in a random shard-respecting order == replay to T.

Streams as the relay publishes them (COMMON.md, "Kafka"): shard i's log read in its own order; a record's
event to its home partition (`partition_of` of its id: the partition rule puts a customer's leads, deals and
tickets in one partition), a reference event to every partition shard i owns — so each of the 64
partitions gets each reference event once, from the one shard that owns it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import StoredEvent

from domain.partitions import PARTITIONS, is_reference, partition_of
from services.application import CrmApplication
from services.projection_runtime.partitioned import Delivery, PartitionedProjector, aggregate_kind
from services.projection_runtime.registry import READ_MODELS
from services.settings import Database, database_from_url
from services.sharding import router
from services.sharding.router import ShardedApplication
from services.storage.read_model_store import ReadModelStore
from tests.support.equivalence import all_read_models, apply_history, check_partitioned_equivalence, interleaved

Op = tuple[str, int, int, bool]
# A customer and a lead without external id (index 2 mod 3) for each of the 3 placed partitions, after the
# generator's seed operations (whose records mostly have external ids: their uuid5 decides where they live).
SHARD_SEEDS: list[Op] = [(("customer", "lead")[n % 2], 2 + 3 * n, 0, False) for n in range(6)]


class Routed:
    """The `CrmApplication` methods the history generator calls (`register_customer(command, meta)`, …), each
    sent through the router's `handle` — so every command is routed as the gateways route it."""

    def __init__(self, crm: ShardedApplication) -> None:
        self.crm = crm

    def get(self, aggregate_type: type, aggregate_id: Any) -> Any:
        return self.crm.get(aggregate_type, aggregate_id)

    def save_new(self, aggregate: Any) -> None:
        """A legacy write straight to a campaign's stream (`Campaign.ResponseRecorded`): reference data, saved on
        the default shard, which copies it to the others as the router's own reference writes."""
        self.crm.default.save_new(aggregate)

    def __getattr__(self, name: str) -> Callable[[Any, Any], Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda command, meta: self.crm.handle(command, meta)


def apply_sharded_history(crm: ShardedApplication, ops: list[Op], seed: int) -> list[int]:
    """Run the history (with SHARD_SEEDS) through the router; new customers and leads without an external id are placed in 3
    partitions (one per shard, drawn from `seed`) in turn, so that every shard gets records and partitions
    hold several customers (with an external id, a record's partition is its id's, wherever that is).
    Returns the 3 partitions."""
    rng = random.Random(seed)
    homes = [rng.choice([p for p in range(PARTITIONS) if crm.shard_of(p) == shard]) for shard in range(3)]
    turn = iter(range(10**9))
    real = router.random_partition
    router.random_partition = lambda: homes[next(turn) % len(homes)]  # the router's pick, made deterministic
    try:
        apply_history(Routed(crm), ops[:5] + SHARD_SEEDS + ops[5:], on_sync=lambda: None)  # type: ignore[arg-type]
    finally:
        router.random_partition = real
    return homes


def shard_logs(crm: ShardedApplication) -> list[list[Any]]:
    """Each shard's notifications (stored, sealed), in its own order."""
    logs = []
    for app in crm.apps:
        notifications: list[Any] = []
        while batch := app.recorder.select_notifications(notifications[-1].id + 1 if notifications else 1, 2000):
            notifications.extend(batch)
        logs.append(notifications)
    return logs


def _is_reference(event: Any) -> bool:
    return is_reference(aggregate_kind(event))


def relay_streams(crm: ShardedApplication, logs: list[list[Any]]) -> list[list[Delivery]]:
    """The 64 partitions' deliveries as one relay per shard publishes them (offset = position in the partition).
    Partitions are filled shard after shard: a partition belongs to one shard, so its order is that shard's."""
    streams: list[list[Delivery]] = [[] for _ in range(PARTITIONS)]
    for shard, (app, notifications) in enumerate(zip(crm.apps, logs)):
        owned = [p for p in range(PARTITIONS) if crm.shard_of(p) == shard]
        for event in app.mapper.to_sealed_events(notifications):
            for p in owned if _is_reference(event) else [partition_of(event.originator_id)]:
                streams[p].append(Delivery(p, len(streams[p]), event))
    return streams


def check_shard_logs(crm: ShardedApplication, logs: list[list[Any]]) -> None:
    """Each shard's notification ids are gap-free; every record's events are in the shard of its partition;
    every shard holds the same reference events (same ids, versions, topics and content, in each aggregate's
    order)."""
    references = []
    for shard, (app, notifications) in enumerate(zip(crm.apps, logs)):
        assert [n.id for n in notifications] == list(range(1, len(notifications) + 1)), f"shard {shard}: a gap"
        held: dict[Any, list[tuple[Any, ...]]] = {}
        for notification, event in zip(notifications, app.mapper.to_sealed_events(notifications)):
            if _is_reference(event):
                held.setdefault(event.originator_id, []).append(
                    (notification.originator_version, notification.topic, notification.state))
            else:
                assert crm.shard_of(partition_of(event.originator_id)) == shard, \
                    f"{type(event).__qualname__} of {event.originator_id} is on shard {shard}"
        references.append(held)
    assert all(held == references[0] for held in references[1:]), "the shards hold different reference events"


def merged_order(logs: list[list[Any]], crm: ShardedApplication, rng: random.Random) -> list[StoredEvent]:
    """The shards' logs merged in a random order that keeps each shard's: a reference event is taken where it
    first comes (its copies in the other shards are passed by), so it precedes whatever follows it in any shard."""
    cursors, merged, seen = [0] * len(logs), [], set()
    reference_topics = {n.topic for app, log in zip(crm.apps, logs)
                        for n, event in zip(log, app.mapper.to_sealed_events(log)) if _is_reference(event)}
    while open_ := [s for s, log in enumerate(logs) if cursors[s] < len(log)]:
        shard = rng.choice(open_)
        notification = logs[shard][cursors[shard]]
        cursors[shard] += 1
        key = (notification.originator_id, notification.originator_version)
        if notification.topic in reference_topics:
            if key in seen:
                continue
            seen.add(key)
        merged.append(StoredEvent(notification.originator_id, notification.originator_version, notification.topic,
                                  notification.state))
    return merged


@contextmanager
def merged_application(crm: ShardedApplication, logs: list[list[Any]], rng: random.Random
                       ) -> Iterator[CrmApplication]:
    """One in-memory log holding every shard's events once, in a random shard-respecting order; its personal
    data opened with each shard's keys (where the seals were made)."""
    app = CrmApplication(database_from_url("memory://"))
    own_keys = app.keys
    try:
        app.recorder.insert_events(merged_order(logs, crm, rng))
        app.keys = crm.keys  # type: ignore[assignment]
        yield app
    finally:
        app.keys = own_keys
        app.close()


def apply_interleaved(store: ReadModelStore, streams: list[list[Delivery]], rng: random.Random,
                      max_batch: int) -> None:
    """One consumer taking every partition in a random interleaving, random batch sizes, now and then a
    partition again from a few events back (`equivalence.interleaved`)."""
    projector = PartitionedProjector(store, all_read_models())
    for deliveries in interleaved(streams, rng, max_batch):
        projector.apply(deliveries)
    store.close()


def apply_by_consumers(database: Database, streams: list[list[Delivery]], rng: random.Random, max_batch: int,
                       consumers: int = 3) -> int:
    """`consumers` concurrent workers (threads, each its own connection), each owning a random share of the 64
    partitions as a consumer group assigns them and taking its partitions in a random interleaving and random
    batches; returns how many batches were done again after meeting another worker's."""
    owner = [rng.randrange(consumers) for _ in streams]
    shares = [[stream if owner[p] == c else [] for p, stream in enumerate(streams)] for c in range(consumers)]
    seeds = [rng.randrange(2**32) for _ in range(consumers)]
    projectors = [PartitionedProjector(ReadModelStore(database), all_read_models()) for _ in range(consumers)]

    def work(c: int) -> None:
        for deliveries in interleaved(shares[c], random.Random(seeds[c]), max_batch):
            projectors[c].apply(deliveries)

    try:
        with ThreadPoolExecutor(consumers) as pool:
            for future in [pool.submit(work, c) for c in range(consumers)]:
                future.result()
        return sum(projector.retries for projector in projectors)
    finally:
        for projector in projectors:
            projector.store.close()


def check_sharded_example(crm: ShardedApplication, live: Database, days: list[int], batch: int, seed: int,
                          concurrent: bool = False) -> tuple[int, int]:
    """After a history ran through `crm`: the shard logs' properties, then the read models in `live` (empty)
    fed by the 64 partitions' streams == a rebuild of the merged logs == replay to T. Returns (deliveries,
    batches retried)."""
    rng, logs = random.Random(seed), shard_logs(crm)
    check_shard_logs(crm, logs)
    streams = relay_streams(crm, logs)
    if concurrent:
        retries = apply_by_consumers(live, streams, rng, batch)
    else:
        apply_interleaved(ReadModelStore(live), streams, rng, batch)
        retries = 0
    store = ReadModelStore(live)
    assert PartitionedProjector(store, all_read_models()).offsets() == {
        (name, p): len(stream) - 1 for name in READ_MODELS for p, stream in enumerate(streams) if stream}
    with merged_application(crm, logs, rng) as merged:
        check_partitioned_equivalence(merged, store, days, concurrent)
    store.close()
    return sum(map(len, streams)), retries

