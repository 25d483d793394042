"""Property on PostgreSQL: the attribution read model caught up incrementally == rebuilt == replayed to random
instants for every model, on histories rich in touches and wins, in a business zone; and each won deal's
credits sum to its value under every model (the SQLite twin: tests/unit/projections/attribution/
test_equivalence.py). Every read model is held equal along the way (`equivalence.check_equivalence`)."""

from hypothesis import HealthCheck, given, settings

from services.settings import database_from_url
from tests.support import running_services as services
from tests.support.attribution_histories import half_lives, marketing_operations, run_attribution_example
from tests.support.equivalence import batch_sizes, instants, time_zone


@settings(max_examples=2, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=marketing_operations, days=instants, batch=batch_sizes, half_life=half_lives)
def test_attribution_is_the_same_every_way_on_postgres(postgres_url: str, ops: list, days: list[int], batch: int,
                                                       half_life: float) -> None:
    with services.temporary_database(postgres_url) as url, time_zone("Asia/Shanghai"):
        assert run_attribution_example(database_from_url(url), ops, days, batch, half_life) >= 0
