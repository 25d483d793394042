"""Property, three SQLite shard files: random histories run through the router land in 3 shards by partition
(each shard's log gap-free, every record's events in its partition's shard, the same reference events in
every shard), and the read models fed by the 64 partitions' streams — as one relay per shard publishes them —
in random interleavings and batch sizes == a rebuild of the merged logs == replayed up to T."""

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from services.settings import database_from_url
from tests.support.equivalence import batch_sizes, instants, operations
from tests.support.sharded_equivalence import apply_sharded_history, check_sharded_example
from tests.support.shards import sharded


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, days=instants, batch=batch_sizes, seed=st.integers(0, 2**32))
def test_sharded_histories_projected_by_partition_equal_rebuild_and_replay(ops: list, days: list[int], batch: int,
                                                                         seed: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        shards = [database_from_url(f"sqlite:///{Path(folder) / f'shard{i}.db'}") for i in range(3)]
        with sharded(shards) as crm:
            homes = apply_sharded_history(crm, ops, seed)
            assert len({crm.shard_of(p) for p in homes}) == 3
            check_sharded_example(crm, shards[0], days, batch, seed)  # read models in the default shard
