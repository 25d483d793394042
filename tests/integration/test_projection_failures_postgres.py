"""On PostgreSQL: an event a read model cannot apply stops that read model (recorded, durable), the others
catch up, and compensating events plus `resume --skip` let it go on, as a rebuild would."""

from __future__ import annotations

from datetime import datetime, timezone

from services.application import CrmApplication
from services.commands import CaptureLead
from services.projection_runtime.registry import projector_for, summaries
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import at
from tests.unit.services.history.test_rules import record_sale
from tests.unit.services.projection_runtime.test_projection_failures import write_unappliable_event

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def test_an_unappliable_event_stops_one_read_model_until_it_is_passed_by(pg_database) -> None:
    app = CrmApplication(database_from_url(pg_database))
    store = ReadModelStore(app.database)
    record_sale(app)
    lead = write_unappliable_event(app)
    bad = app.event_count()
    app.capture_lead(CaptureLead("王芳", "华东", "互联网", "web", company="杭州云启科技有限公司"), at(2))  # compensating

    projector_for(app, store).catch_up(strict=False, limit=4)

    states = {state.name: state for state in projector_for(app, store).status()}
    assert states["funnel"].position == bad - 1
    assert (states["funnel"].failure.position, states["funnel"].failure.aggregate_id) == (bad, str(lead))
    assert all(state.lag == 0 for name, state in states.items() if name != "funnel")

    projector = projector_for(app, store)
    projector.resume("funnel", skip=True)
    projector.catch_up()
    incremental = summaries(app, store, NOW)
    projector.rebuild()
    assert summaries(app, store, NOW) == incremental
    assert all(state.lag == 0 and not state.stopped for state in projector.status())
    store.close()
    app.close()
