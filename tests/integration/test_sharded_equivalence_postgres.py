"""Property, three PostgreSQL shard databases: random histories routed by partition (each shard's log gap-free,
every record's events in its partition's shard, the same reference events in every shard); the 64
partitions' streams — as one relay per shard publishes them — projected by one consumer in random
interleavings and batch sizes, or by three concurrent consumers each owning a random share of the partitions,
== a rebuild of the merged logs == replayed up to T.

The shards are this module's (fresh databases, `crm db migrate`'s sharded path, dropped after), so the
examples' histories accumulate in them — each example checks the whole logs; the read models of each
example go to a fresh database of their own (offsets start empty)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from services.settings import Database, database_from_url
from tests.support import running_services as services
from tests.support.equivalence import batch_sizes, instants, operations
from tests.support.sharded_equivalence import apply_sharded_history, check_sharded_example
from tests.support.shards import migrated_shards, sharded

SETTINGS = settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def shards(postgres_url: str) -> Iterator[list[Database]]:
    with migrated_shards(postgres_url) as databases:
        yield databases


def _example(postgres_url: str, shards: list[Database], ops: list, days: list[int], batch: int, seed: int,
             concurrent: bool) -> None:
    with sharded(shards) as crm, services.temporary_database(postgres_url) as live:
        homes = apply_sharded_history(crm, ops, seed)
        assert len({crm.shard_of(p) for p in homes}) == 3
        check_sharded_example(crm, database_from_url(live), days, batch, seed, concurrent=concurrent)


@SETTINGS
@given(ops=operations, days=instants, batch=batch_sizes, seed=st.integers(0, 2**32))
def test_one_consumer_in_any_interleaving_equals_rebuild_and_replay(postgres_url: str, shards: list[Database],
                                                                    ops: list, days: list[int], batch: int,
                                                                    seed: int) -> None:
    _example(postgres_url, shards, ops, days, batch, seed, concurrent=False)


@SETTINGS
@given(ops=operations, days=instants, batch=st.integers(1, 8), seed=st.integers(0, 2**32))
def test_three_concurrent_consumers_equal_rebuild_and_replay(postgres_url: str, shards: list[Database], ops: list,
                                                             days: list[int], batch: int, seed: int) -> None:
    _example(postgres_url, shards, ops, days, batch, seed, concurrent=True)
