"""Property: on PostgreSQL, read models caught up incrementally == rebuilt from zero == replayed up to T — in UTC
and in a business's own time zone (the funnel's tallies keep its days; periods and cohorts in SQL)."""

from hypothesis import HealthCheck, given, settings

from services.settings import database_from_url
from tests.support.equivalence import batch_sizes, instants, operations, run_example, time_zone, zones

from tests.support import running_services as services


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=operations, days=instants, batch=batch_sizes)
def test_incremental_equals_rebuild_equals_replay(postgres_url: str, ops: list, days: list[int], batch: int) -> None:
    with services.temporary_database(postgres_url) as url:
        run_example(database_from_url(url), ops, days, batch)


@settings(max_examples=2, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=operations, days=instants, batch=batch_sizes, zone=zones)
def test_incremental_equals_rebuild_equals_replay_in_a_business_time_zone(postgres_url: str, ops: list,
                                                                          days: list[int], batch: int,
                                                                          zone: str) -> None:
    with services.temporary_database(postgres_url) as url, time_zone(zone):
        run_example(database_from_url(url), ops, days, batch)
