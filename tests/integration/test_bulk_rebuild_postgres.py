"""Property: on PostgreSQL, the bulk rebuild (services/bulk) writes the very rows the handlers write (funnel,
timeline, tickets, external ids, rates, segments, campaigns), table by table, for random histories and the demo history; and it
stands the read model at the head it read."""

from __future__ import annotations

import threading
import time

import psycopg
from hypothesis import HealthCheck, given, settings, strategies as st

from projections.campaigns import CampaignsReadModel
from projections.external_ids import ExternalIdsReadModel
from projections.funnel import FunnelReadModel
from projections.rates import RatesReadModel
from projections.segments import SegmentsReadModel
from projections.tickets import TicketsReadModel
from projections.timeline import TimelineReadModel
from services.application import CrmApplication
from services.bulk import duckdb_rebuild
from services.bulk.duckdb_rebuild import bulk_build
from services.demo.sample_data import DemoHistory, DemoSettings
from services.projection_runtime.model_settings import configured
from services.projection_runtime.projector import Projector, read_positions
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.support import running_services as services
from tests.support.bulk_equivalence import assert_bulk_equals_handlers, run_history, snapshot
from tests.support.equivalence import ZONES, operations, time_zone

FOLDED = (FunnelReadModel, TimelineReadModel, TicketsReadModel, ExternalIdsReadModel, RatesReadModel, SegmentsReadModel,
          CampaignsReadModel)
"""The read models with a set-based fold (`duckdb_rebuild.FOLDS`)."""


@settings(max_examples=3, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=operations, pipelines_first=st.booleans(), zone=st.sampled_from(("UTC", *ZONES)))
def test_the_bulk_folds_equal_the_handlers_on_random_histories(postgres_url: str, ops: list,
                                                                 pipelines_first: bool, zone: str) -> None:
    """In UTC and in a business's zone (the funnel's tallies keep its days: CRM_TIME_ZONE)."""
    with services.temporary_database(postgres_url) as url, time_zone(zone):
        database = database_from_url(url)
        app, store = CrmApplication(database), ReadModelStore(database)
        try:
            run_history(app, ops, pipelines_first)
            assert_bulk_equals_handlers(app, store, [configured(model) for model in FOLDED])
        finally:
            store.close()
            app.close()


def test_the_bulk_folds_equal_the_handlers_on_the_demo_history(pg_database: str) -> None:
    database = database_from_url(pg_database)
    app, store = CrmApplication(database), ReadModelStore(database)
    app.ensure_default_pipelines()
    DemoHistory(app, DemoSettings(seed=3, leads=250, days=200)).run()
    tables = assert_bulk_equals_handlers(app, store, [model() for model in FOLDED])
    assert len(tables["funnel_intervals"]) > 500 and tables["funnel_tallies"] and len(tables["funnel_sums"]) > 100
    assert len(tables["tickets_versions"]) > 20 and tables["tickets_ratings"] and tables["tickets_wins"]
    assert len(tables["segments_intervals"]) > 100 and {row[4] for row in tables["segments_intervals"]} == {
        "high_value", "potential", "ordinary"}
    assert len(tables["campaigns_leads"]) > 100 and tables["campaigns_responses"] and tables["campaigns_deal_events"]
    store.close()
    app.close()


def test_a_bulk_rebuild_then_the_follower_equals_the_handlers(pg_database: str) -> None:
    """The position the bulk path sets is where the follower goes on from: events recorded after it are
    applied once, by the handlers, onto the bulk rows."""
    database = database_from_url(pg_database)
    app, store = CrmApplication(database), ReadModelStore(database)
    app.ensure_default_pipelines()
    demo = DemoHistory(app, DemoSettings(seed=4, leads=150, days=120))
    demo.run()
    seen: list[tuple[int, int]] = []
    assert bulk_build(app, store, ["funnel"], lambda done, head: seen.append((done, head))) == app.event_count()
    assert seen[-1] == (app.event_count(), app.event_count())
    DemoHistory(app, DemoSettings(seed=5, leads=100, days=60)).run()  # more events after the rebuild
    model = FunnelReadModel()
    Projector(app, store, [model]).catch_up()
    assert read_positions(store, ["funnel"]) == {"funnel": app.event_count()}
    caught_up = snapshot(store, [model])
    Projector(app, store, [model]).rebuild()
    assert snapshot(store, [model]) == caught_up
    store.close()
    app.close()


def test_a_bulk_rebuild_and_a_follower_batch_at_the_same_time_both_finish(pg_database: str, monkeypatch) -> None:
    """The bulk transaction locks the positions first, as the online swap does: a follower batch (position
    first, then its tables) waits for it instead of closing a deadlock cycle that aborted the rebuild."""
    database = database_from_url(pg_database)
    app, store = CrmApplication(database), ReadModelStore(database)
    app.ensure_default_pipelines()
    DemoHistory(app, DemoSettings(seed=3, leads=40, days=30)).run()
    Projector(app, store, [FunnelReadModel()]).catch_up()

    follower = psycopg.connect(pg_database, autocommit=True)
    position = follower.execute("SELECT position FROM projection_positions WHERE name = 'funnel'").fetchone()[0]

    restart = duckdb_rebuild._restart

    writing = threading.Event()

    def slow_restart(cursor, name, head):  # the bulk write phase of a big log takes a while
        writing.set()
        time.sleep(1.5)
        restart(cursor, name, head)

    monkeypatch.setattr(duckdb_rebuild, "_restart", slow_restart)
    errors: list[BaseException] = []

    def bulk() -> None:
        try:
            duckdb_rebuild.bulk_build(app, store, ["funnel"])
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    rebuilding = threading.Thread(target=bulk)
    rebuilding.start()
    assert writing.wait(30)  # the bulk transaction has dropped and refilled the funnel's tables
    follower.autocommit = False  # a follower batch starts now: its first write is the guarded position
    follower.execute("UPDATE projection_positions SET position = %s WHERE name = 'funnel' AND position = %s",
                     (position, position))
    try:
        follower.execute("SELECT count(*) FROM funnel_items").fetchone()  # the follower's handlers read rows
        follower.commit()
    except psycopg.errors.DeadlockDetected as error:
        follower.rollback()
        errors.append(error)
    rebuilding.join(30)
    follower.close()

    assert not errors, f"a bulk rebuild racing a follower batch failed: {errors!r}"
    store.close()
    app.close()
