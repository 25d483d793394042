"""`crm projections rebuild --jobs N` on PostgreSQL: worker processes, each over a share of the read models,
leave exactly what one process rebuilding them all leaves."""

import os
import subprocess
import sys

from services.application import CrmApplication
from services.demo.sample_data import DemoHistory, DemoSettings
from services.projection_runtime.parallel_rebuild import rebuild_in_parallel
from services.projection_runtime.registry import projector_for, summaries
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url


def test_a_rebuild_in_worker_processes_equals_one_in_a_single_process(pg_database: str) -> None:
    app = CrmApplication(database_from_url(pg_database))
    app.ensure_default_pipelines()
    DemoHistory(app, DemoSettings(seed=5, leads=300, days=200)).run()
    store = ReadModelStore(app.database)
    instants = [e.occurred_at for _, e in app.read_log()][:: app.event_count() // 3]
    projector_for(app, store).rebuild()
    single = [summaries(app, store, t) for t in instants]

    assert rebuild_in_parallel(app, store, [], jobs=2) == app.event_count()
    assert [summaries(app, store, t) for t in instants] == single

    with store.transaction() as cursor:  # a damaged read model: the command must put it back
        cursor.execute("DELETE FROM timeline_entries")
    done = subprocess.run([sys.executable, "-m", "gateways.cli.main", "projections", "rebuild", "--jobs", "2"],
                          env={**os.environ, "CRM_DATABASE_URL": pg_database}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [summaries(app, store, t) for t in instants] == single
    assert all(s.lag == 0 for s in projector_for(app, store).status())
    store.close()
    app.close()

