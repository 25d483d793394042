"""Property: on PostgreSQL, read models caught up incrementally == rebuilt from zero == replayed up to T."""

from hypothesis import HealthCheck, given, settings

from services.application import CrmApplication
from services.projector import Projector
from services.read_models import READ_MODELS
from services.readstore import ReadStore
from services.settings import database_from_url
from tests.equivalence import apply_history, batch_sizes, check_equivalence, instants, operations

from . import services


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=operations, days=instants, batch=batch_sizes)
def test_incremental_equals_rebuild_equals_replay(postgres_url: str, ops: list, days: list[int], batch: int) -> None:
    with services.temporary_database(postgres_url) as url:
        database = database_from_url(url)
        app = CrmApplication(database)
        app.ensure_default_pipelines()
        live = ReadStore(database)
        follower = Projector(app, live, [model() for model in READ_MODELS.values()])
        apply_history(app, ops, on_sync=lambda: follower.catch_up(limit=batch))
        check_equivalence(app, live, days, batch)
        for closable in (live, app):
            closable.close()
