"""Property: on PostgreSQL, the variants read model caught up incrementally == rebuilt from
zero == replayed up to random instants, on random A/B-test histories (tests/support/variant_histories.py);
3 examples: the SQLite property test runs 10 (tests/unit/projections/variants/test_equivalence.py)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.settings import database_from_url
from tests.support import running_services as services
from tests.support.equivalence import batch_sizes, instants
from tests.support.variant_histories import run_variant_example, variant_operations


@settings(max_examples=3, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_variant_funnels_are_the_same_every_way(postgres_url: str, data: st.DataObject) -> None:
    history = data.draw(variant_operations), data.draw(instants), data.draw(batch_sizes)
    with services.temporary_database(postgres_url) as url:
        run_variant_example(database_from_url(url), *history)
