"""Property: on SQLite, read models caught up incrementally == rebuilt from zero == replayed up to T."""

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from services.settings import database_from_url
from tests.support.equivalence import batch_sizes, instants, operations, run_example


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, days=instants, batch=batch_sizes)
def test_incremental_equals_rebuild_equals_replay(ops: list, days: list[int], batch: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run_example(database_from_url(f"sqlite:///{Path(folder) / 'crm.db'}"), ops, days, batch)
