"""Properties of the attribution read model on SQLite, over histories rich in touches and wins
(tests/support/attribution_histories.py): incremental == rebuild == replay to random instants for every
model (the registry's summary holds each model by variant, time decay at two half-lives, and the cohorts),
in a business zone; and each won deal's credits sum to its value under every model. The PostgreSQL twin is
tests/integration/test_attribution_equivalence_postgres.py."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from services.settings import database_from_url
from tests.support.attribution_histories import half_lives, marketing_operations, run_attribution_example
from tests.support.equivalence import batch_sizes, instants

SPREAD: list[int] = []


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(ops=marketing_operations, days=instants, batch=batch_sizes, half_life=half_lives)
def test_attribution_is_the_same_every_way_and_sums_to_each_deal(monkeypatch: pytest.MonkeyPatch, ops: list,
                                                                  days: list[int], batch: int,
                                                                  half_life: float) -> None:
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Shanghai")
    with tempfile.TemporaryDirectory() as folder:
        SPREAD.append(run_attribution_example(database_from_url(f"sqlite:///{Path(folder) / 'crm.db'}"), ops, days,
                                              batch, half_life))


def test_the_histories_credit_several_touches() -> None:
    """Runs after the property (file order): most examples shared some deal's value over 2+ touches."""
    if SPREAD:
        assert sum(1 for spread in SPREAD if spread) >= len(SPREAD) // 2, SPREAD
