"""On PostgreSQL: a Deal.Lost stored in its version-1 shape is upcast on read; read models rebuild the same."""

from domain.deal import Deal
from services.application import CrmApplication
from services.projection_runtime.registry import projector_for, summaries
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import at
from tests.support.schema_evolution import lost_deals

from tests.support import running_services as services


def test_old_shape_events_upcast_and_rebuild_identically(postgres_url: str) -> None:
    answers = []
    for old_shape in (True, False):
        with services.temporary_database(postgres_url) as url:
            app = CrmApplication(database_from_url(url))
            app.ensure_default_pipelines(at(-1))
            lost_deals(app, old_shape)
            losses = [(e.reason, e.competitor) for _, e in app.read_log() if isinstance(e, Deal.Lost)]
            assert losses == [("选择了竞争对手", ""), ("选择了竞争对手", "金蝶")]
            store = ReadModelStore(app.database)
            projector_for(app, store).rebuild()
            answers.append(summaries(app, store, at(10).occurred_at))
            store.close()
            app.close()

    assert answers[0] == answers[1]
