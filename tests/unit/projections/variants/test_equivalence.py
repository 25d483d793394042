"""Property: the variants read model caught up incrementally == rebuilt from zero == replayed up to random
instants, at every step of the funnel, on random A/B-test histories (tests/support/variant_histories.py):
variants defined and added to, exposures, stops, winners, responses and leads naming a variant or none, leads
taken to won, lost, reopened and re-priced deals in three currencies, exchange rates. The PostgreSQL twin is
tests/integration/test_variants_equivalence_postgres.py; the general histories check it too."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from services.settings import database_from_url
from tests.support.equivalence import batch_sizes, instants
from tests.support.variant_histories import run_variant_example, variant_operations


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=variant_operations, days=instants, batch=batch_sizes)
def test_variant_funnels_are_the_same_every_way(ops: list, days: list[int], batch: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run_variant_example(database_from_url(f"sqlite:///{Path(folder) / 'crm.db'}"), ops, days, batch)
