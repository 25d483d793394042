"""Property on PostgreSQL: the inspection read model (slippage, changes, inactivity, win/loss) in Asia/Shanghai
caught up incrementally == rebuilt == replayed up to random instants; and the seeded long history that holds every
kind of answer (tests/support/inspection_equivalence.py). Every read model together in UTC and other zones:
test_equivalence_postgres.py."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from services.settings import database_from_url
from tests.support import running_services as services
from tests.support.equivalence import batch_sizes, instants
from tests.support.inspection_equivalence import (LONG_HISTORY_DAYS, check, coverage, inspection_operations,
                                                 long_history)


@settings(max_examples=2, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=inspection_operations, days=instants, batch=batch_sizes)
def test_inspection_is_the_same_every_way_on_postgres(postgres_url: str, monkeypatch: pytest.MonkeyPatch, ops: list,
                                                      days: list[int], batch: int) -> None:
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Shanghai")
    with services.temporary_database(postgres_url) as url:
        check(database_from_url(url), ops, days, batch)


def test_a_long_history_is_the_same_every_way_on_postgres(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Shanghai")
    with services.temporary_database(postgres_url) as url:
        seen = coverage(check(database_from_url(url), long_history(), LONG_HISTORY_DAYS, 17))
    assert all(seen.values()), seen
