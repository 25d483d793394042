"""Property: on SQLite, read models caught up incrementally == rebuilt from zero == replayed up to T — in UTC
and in a business's own time zone (the funnel's tallies keep that zone's days and months)."""

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from services.settings import database_from_url
from tests.support.equivalence import batch_sizes, instants, operations, run_example, time_zone, zones


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, days=instants, batch=batch_sizes)
def test_incremental_equals_rebuild_equals_replay(ops: list, days: list[int], batch: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run_example(database_from_url(f"sqlite:///{Path(folder) / 'crm.db'}"), ops, days, batch)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, days=instants, batch=batch_sizes, zone=zones)
def test_incremental_equals_rebuild_equals_replay_in_a_business_time_zone(ops: list, days: list[int], batch: int,
                                                                          zone: str) -> None:
    with tempfile.TemporaryDirectory() as folder, time_zone(zone):
        run_example(database_from_url(f"sqlite:///{Path(folder) / 'crm.db'}"), ops, days, batch)
