"""Property: the inspection read model in the business's zone (Asia/Shanghai) caught up incrementally in random
batches == rebuilt from zero == replayed up to random instants, on random histories whose deals' close dates
move across months and quarters, amounts and stages change, deals are lost to competitors, customers are touched
and their tickets move (tests/support/equivalence.py, tests/support/inspection_equivalence.py). The UTC runs with
every read model, partitioned and on PostgreSQL, are tests/unit/services/projection_runtime/test_equivalence_sqlite.py
and the integration tests."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from services.settings import database_from_url
from tests.support.equivalence import batch_sizes, instants, time_zone
from tests.support.inspection_equivalence import (LONG_HISTORY_DAYS, check, coverage, inspection_operations,
                                                 long_history)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(ops=inspection_operations, days=instants, batch=batch_sizes)
def test_inspection_in_a_business_zone_is_the_same_every_way(ops: list, days: list[int], batch: int) -> None:
    with tempfile.TemporaryDirectory() as folder, time_zone("Asia/Shanghai"):
        check(database_from_url(f"sqlite:///{Path(folder) / 'crm.db'}"), ops, days, batch)


def test_a_long_history_holds_every_kind_of_answer_and_is_the_same_every_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: a seeded history of 400 operations, asked at five instants, holds close dates pushed and
    pulled in, amount and stage changes, losses to competitors and inactive deals — and agrees every way."""
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Shanghai")
    seen = coverage(check(database_from_url("memory://"), long_history(), LONG_HISTORY_DAYS, 17))
    assert all(seen.values()), seen
