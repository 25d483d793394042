"""Property: on PostgreSQL, the reminders read model caught up incrementally beside the process that emits ==
rebuilt from zero == replayed up to T (tests/support/reminder_histories.py); 3 examples (≈ 10 s each on a loaded
machine): the SQLite property test runs 25."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.settings import database_from_url
from tests.support.equivalence import batch_sizes, instants, operations
from tests.support.reminder_histories import run_reminder_example

from tests.support import running_services as services


@settings(max_examples=3, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_incremental_equals_rebuild_equals_replay(postgres_url: str, data: st.DataObject) -> None:
    history = data.draw(operations), data.draw(instants), data.draw(batch_sizes)
    with services.temporary_database(postgres_url) as url:
        assert run_reminder_example(database_from_url(url), *history) >= 0
