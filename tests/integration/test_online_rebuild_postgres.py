"""`crm projections rebuild --online` on PostgreSQL: the current read models keep answering (never empty, never
going back) while the new version is built and the live follower keeps feeding them; the swap neither loses nor
double-applies an event the follower applies around it; a build killed with SIGKILL leaves the current tables
answering, and the next one cleans up and succeeds; two at once are refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import pytest

from services.application import CrmApplication
from services.commands import CaptureLead
from services.demo.sample_data import DemoHistory, DemoSettings
from services.projection_runtime import registry
from services.projection_runtime.freshness import freshness
from services.projection_runtime.online_rebuild import rebuild_online
from services.projection_runtime.projector import Projector
from services.projection_runtime.registry import READ_MODELS, projector_for, summaries
from services.storage.read_model_store import GREEN_SUFFIX, ReadModelStore
from services.settings import database_from_url
from tests.conftest import at
from tests.integration.test_one_feeder_postgres import Captured
from tests.support.running_services import REPO_ROOT

CRM = [sys.executable, "-m", "gateways.cli.main"]
WRITES = 60  # leads captured while the first test's online rebuild runs


@pytest.fixture
def demo(pg_database: str) -> Any:
    """A demo log of ≈ 1,000 events with every read model caught up, and a store on it."""
    app = CrmApplication(database_from_url(pg_database))
    app.ensure_default_pipelines()
    DemoHistory(app, DemoSettings(seed=5, leads=150, days=150)).run()
    store = ReadModelStore(app.database)
    projector_for(app, store).catch_up()
    yield app, store
    store.close()
    app.close()


def in_batches_of(size: int, pause: float = 0.0) -> Callable[..., int]:
    """A `Builder`: the handlers, `size` events a batch (so that the build takes a while), pausing after each."""
    def build(app: CrmApplication, store: ReadModelStore, names: Sequence[str], progress: Any) -> int:
        projector = projector_for(app, store, names)
        projector.catch_up(lambda done, head: (progress(done, head), time.sleep(pause)), limit=size, strict=False)
        return min(projector.positions().values())
    return build


def green_tables(store: ReadModelStore) -> list[str]:
    return [t for (t,) in store.query("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() || ?",
                                      (GREEN_SUFFIX,))]


class Following:
    """The live follower (its own store) in a thread, as `crm serve` runs it."""

    def __init__(self, app: CrmApplication, models: Sequence[Any] | None = None) -> None:
        self.store = ReadModelStore(app.database)
        self.projector = Projector(app, self.store, models or [m() for m in READ_MODELS.values()])
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.projector.follow, args=(self.stop, 0.01))

    def __enter__(self) -> Following:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        self.store.close()

    def wait_for_head(self) -> None:
        deadline = time.monotonic() + 30
        while min(self.projector.positions().values()) < self.projector.app.event_count():
            assert time.monotonic() < deadline, "the follower did not reach the head"
            time.sleep(0.02)


def capture(app: CrmApplication, i: int) -> None:
    app.capture_lead(CaptureLead(f"在线{i}", "华东", "零售", "web"), at(400 + i / 100))


def test_queries_answer_throughout_and_the_result_equals_a_clean_rebuild(demo: Any) -> None:
    app, store = demo
    now = datetime.now(timezone.utc)
    before = summaries(app, store, now)
    reader_store, stop, problems, answered = ReadModelStore(app.database), threading.Event(), [], [0]

    def read() -> None:  # what a report sees while the new version is built and swapped in
        position = 0
        while not stop.is_set():
            try:
                found = freshness(app, reader_store, list(READ_MODELS)).position
                answer = summaries(app, reader_store, now)
            except Exception as error:  # noqa: BLE001 - the test reports it
                problems.append(repr(error))
                continue
            problems.extend(f"{name} answered empty" for name in READ_MODELS if bool(answer[name]) != bool(before[name]))
            problems.extend([f"position went back from {position} to {found}"] if found < position else [])
            position, answered[0] = found, answered[0] + 1
            time.sleep(0.05)  # a report every ≈ 0.1 s: the GIL left to the build and the follower

    def write() -> None:  # at most WRITES: a busy machine slows the build, which must not chase the writer for ever
        for i in range(WRITES):
            if stop.is_set():
                return
            capture(app, i)
            time.sleep(0.05)

    threads = [threading.Thread(target=read), threading.Thread(target=write)]
    with Following(app) as follower:
        for thread in threads:
            thread.start()
        started = time.monotonic()
        swapped_at = rebuild_online(app, store, [], in_batches_of(200, 0.05))
        print("online rebuild", round(time.monotonic() - started, 1), "s; events", app.event_count(), "answers", answered[0])
        stop.set()
        for thread in threads:
            thread.join(30)
        follower.wait_for_head()
    reader_store.close()

    assert problems == [] and answered[0] >= 5  # it read throughout (CI once saw exactly 10: ≥ 11 asked too much)
    assert swapped_at > 0 and green_tables(store) == []
    instants = [now, *(e.occurred_at for _, e in app.read_log())][:: app.event_count() // 4]
    online = [summaries(app, store, t) for t in instants]
    started = time.monotonic()
    projector_for(app, store).rebuild()  # the clean rebuild: empty, then the whole log
    print("clean rebuild", time.monotonic() - started)
    assert [summaries(app, store, t) for t in instants] == online


def test_the_swap_racing_the_follower_neither_loses_nor_doubles_an_event(
        crm_pg: CrmApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.READ_MODELS, Captured.name, Captured)
    store = ReadModelStore(crm_pg.database)
    for i in range(5):
        capture(crm_pg, i)
    inside, go = threading.Event(), threading.Event()
    paused = Captured(pause=lambda: (inside.set(), go.wait(10)))
    follower = Projector(crm_pg, ReadModelStore(crm_pg.database), [paused])
    for i in range(5, 8):
        capture(crm_pg, i)
    threads = {"batch": threading.Thread(target=follower.catch_up),  # its transaction moved the position, waits
               "swap": threading.Thread(target=rebuild_online, args=(crm_pg, store, [Captured.name]))}
    threads["batch"].start()
    assert inside.wait(10)
    threads["swap"].start()
    threads["swap"].join(1.5)
    assert threads["swap"].is_alive(), "the swap must wait for the follower's batch"
    go.set()
    for thread in threads.values():
        thread.join(10)
    assert store.query("SELECT n FROM test_captured") == [(8,)]

    paused.pause = lambda: None
    stop, captured = threading.Event(), [8]

    def write() -> None:  # the other order too: follower batches land before, during and after each swap
        while not stop.is_set():
            capture(crm_pg, captured[0])
            captured[0] += 1
            time.sleep(0.01)

    with Following(crm_pg, [Captured()]) as following:
        writer = threading.Thread(target=write)
        writer.start()
        for _ in range(3):
            rebuild_online(crm_pg, store, [Captured.name])
        stop.set()
        writer.join(10)
        following.wait_for_head()
    assert store.query("SELECT n FROM test_captured") == [(captured[0],)]
    store.close()
    follower.store.close()


def test_a_killed_build_leaves_the_current_tables_answering_and_the_next_one_succeeds(demo: Any) -> None:
    app, store = demo
    now = datetime.now(timezone.utc)
    before = summaries(app, store, now)
    env = {**os.environ, "CRM_DATABASE_URL": app.database.url, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen([sys.executable, "-m", "tests.support.online_rebuild_child", app.database.url],
                             cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().startswith("building")
        second = subprocess.run([*CRM, "projections", "rebuild", "--online"], cwd=REPO_ROOT, env=env,
                                capture_output=True, text=True)
        assert second.returncode == 1 and "another online rebuild is running" in second.stderr
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(10)
    assert green_tables(store), "the killed build leaves its half-built tables"
    assert summaries(app, store, now) == before

    rerun = subprocess.run([*CRM, "projections", "rebuild", "--online"], cwd=REPO_ROOT, env=env, capture_output=True,
                           text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "Swapped in the new" in rerun.stdout and green_tables(store) == []
    assert summaries(app, store, now) == before


def test_an_online_build_by_the_bulk_path_swaps_in_the_same_read_models_as_a_clean_rebuild(demo: Any) -> None:
    """`--online --bulk`: DuckDB folds the funnel and the timeline into the new version's schema (its store's
    search_path), the handlers the others; a lead captured meanwhile is applied by the follower on one side of
    the swap, never both; privileges other roles had on the current tables are given on the new ones."""
    from services.bulk.duckdb_rebuild import bulk_build

    app, store = demo
    with store.transaction() as cursor:
        cursor.execute("GRANT SELECT ON funnel_intervals TO PUBLIC")  # a BI reader's, kept by the swap
    with Following(app) as follower:
        capture(app, 0)
        swapped_at = rebuild_online(app, store, [], bulk_build)
        capture(app, 1)
        follower.wait_for_head()
    assert swapped_at > 0 and green_tables(store) == []
    assert store.query("SELECT has_table_privilege('public', 'funnel_intervals', 'SELECT')") == [(True,)]
    now = datetime.now(timezone.utc)
    instants = [now, *(e.occurred_at for _, e in app.read_log())][:: app.event_count() // 4]
    online = [summaries(app, store, t) for t in instants]
    projector_for(app, store).rebuild()
    assert [summaries(app, store, t) for t in instants] == online
