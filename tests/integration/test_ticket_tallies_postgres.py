"""Property on PostgreSQL: the tickets' summed report equals the report derived from every row (the reference),
at ≈ 12 instants and for every page, on random histories of many tickets; the summed tables kept incrementally
equal a rebuild's and `derive`'s (the SQLite twin: tests/unit/projections/tickets/test_summed_report.py)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.settings import database_from_url
from tests.support import running_services as services
from tests.support.ticket_histories import openings, run_ticket_example, ticket_histories


@settings(max_examples=2, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(opened=openings, steps=ticket_histories, batch=st.sampled_from([1, 3, 1000]), seed=st.integers(0, 1000))
def test_summed_report_equals_the_reference_on_postgres(postgres_url: str, opened: list[int], steps: list,
                                                        batch: int, seed: int) -> None:
    with services.temporary_database(postgres_url) as url:
        run_ticket_example(database_from_url(url), opened, steps, batch, seed, every=97)  # ≈ 12 instants
