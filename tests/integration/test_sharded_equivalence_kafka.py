"""Property through real Kafka, three PostgreSQL shard databases: random histories routed by partition, each
shard's log published by its own relay to a fresh 64-partition topic (what lands in each partition is what
tests.support.sharded_equivalence.relay_streams says), consumed by three group members in threads with random
`max_poll_records`, == a rebuild of the merged logs == replayed up to T. Each example on fresh shards and a
fresh topic (the relays' positions and the read models start empty)."""

from __future__ import annotations

import random
from uuid import uuid4

from hypothesis import HealthCheck, given, settings, strategies as st

from domain.partitions import PARTITIONS
from gateways.kafka.projection_consumer import stored_event_of
from services.storage.read_model_store import ReadModelStore
from tests.support.consumer_group import caught_up, end_offsets, members, relay_every_shard, wait_until
from tests.support.equivalence import check_partitioned_equivalence, instants, operations
from tests.support import running_services as services
from tests.support.sharded_equivalence import (apply_sharded_history, check_shard_logs, merged_application,
                                               relay_streams, shard_logs)
from tests.support.shards import migrated_shards, sharded
from tests.support.topics import read_topic


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, days=instants, seed=st.integers(0, 2**32))
def test_three_relays_and_three_members_equal_rebuild_and_replay(postgres_url: str, kafka_bootstrap: str,
                                                                 ops: list, days: list[int], seed: int) -> None:
    rng = random.Random(seed)
    with migrated_shards(postgres_url) as shards, sharded(shards) as crm, \
            services.temporary_topic(kafka_bootstrap, partitions=PARTITIONS) as topic:
        homes = apply_sharded_history(crm, ops, seed)
        assert len({crm.shard_of(p) for p in homes}) == 3
        logs = shard_logs(crm)
        check_shard_logs(crm, logs)
        store = ReadModelStore(crm.database)
        relay_every_shard(crm, store, kafka_bootstrap, topic)

        published: list[list[tuple[str, int]]] = [[] for _ in range(PARTITIONS)]
        for record in read_topic(kafka_bootstrap, topic):
            stored = stored_event_of(record)
            published[record.partition].append((str(stored.originator_id), stored.originator_version))
        assert published == [[(str(d.event.originator_id), d.event.originator_version) for d in stream]
                             for stream in relay_streams(crm, logs)]

        polls = [rng.randint(1, 60) for _ in range(3)]
        with members(crm.apps[0], kafka_bootstrap, topic, f"eq-{uuid4().hex[:8]}", 3, lambda n: polls[n]):
            ends = end_offsets(kafka_bootstrap, topic)
            wait_until(lambda: caught_up(store, ends), 120, "three members to consume the three relays' messages")
        with merged_application(crm, logs, rng) as merged:
            check_partitioned_equivalence(merged, store, days, concurrent=True)  # three members at once
        store.close()
