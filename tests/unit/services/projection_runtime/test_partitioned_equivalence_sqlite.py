"""Property: on SQLite, read models fed partition by partition in random interleavings and batch sizes (with
redeliveries) == a rebuild by the log follower == replayed up to T."""

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from services.settings import database_from_url
from tests.support.equivalence import batch_sizes, instants, operations, run_partitioned_example


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, days=instants, batch=batch_sizes, seed=st.integers(0, 2**32))
def test_any_interleaving_of_partitions_equals_rebuild_and_replay(ops: list, days: list[int], batch: int,
                                                                  seed: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run_partitioned_example(database_from_url(f"sqlite:///{Path(folder) / 'crm.db'}"), ops, days, batch, seed)
