"""Property: the forecast read model in the business's zone (Asia/Shanghai, where a quarter ends at 16:00 UTC)
caught up incrementally == rebuilt from zero == replayed up to random instants, on random histories whose deals'
close dates, probabilities and categories, stage defaults, targets and teams change (tests/support/equivalence.py;
the UTC runs are tests/unit/services/projection_runtime/test_equivalence_sqlite.py and the PostgreSQL ones)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from services.settings import database_from_url
from tests.support.equivalence import batch_sizes, instants, operations, run_example


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(ops=operations, days=instants, batch=batch_sizes)
def test_the_forecast_in_a_business_zone_is_the_same_every_way(monkeypatch: pytest.MonkeyPatch, ops: list,
                                                                days: list[int], batch: int) -> None:
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Shanghai")
    with tempfile.TemporaryDirectory() as folder:
        run_example(database_from_url(f"sqlite:///{Path(folder) / 'crm.db'}"), ops, days, batch)
