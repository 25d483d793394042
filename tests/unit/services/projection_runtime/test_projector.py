"""The projector: exactly once across batches and failures, and a live follower."""

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from projections.read_model import Rows
from projections.funnel import FunnelReadModel
from projections.tables import Table
from services.application import CrmApplication
from services.commands import ChangeStage, LogTouch, OpenDeal, RegisterCustomer, WinDeal
from services.projection_runtime.projector import ProjectionRace, Projector, schema_fingerprint
from services.projection_runtime.registry import projector_for, summaries
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import at


@pytest.fixture
def sqlite_app(tmp_path: Path) -> CrmApplication:
    app = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'crm.db'}"))
    app.ensure_default_pipelines(at(-1))
    return app


def _won_deal(app: CrmApplication, day: int) -> None:
    customer = app.register_customer(RegisterCustomer(f"客户{day}", "华东", "零售", "web"), at(day))
    app.win_deal(WinDeal(app.open_deal(OpenDeal(customer, "ERP", "100", owner="李娜"), at(day))), at(day + 1))


def _won(store: ReadModelStore) -> int:
    return store.query("SELECT COUNT(*) FROM funnel_intervals WHERE stage = 'won'")[0][0]


def test_a_failing_batch_changes_nothing_and_is_handled_once_when_retried(sqlite_app: CrmApplication) -> None:
    for day in range(3):
        _won_deal(sqlite_app, day)
    store = ReadModelStore(sqlite_app.database)
    model = FunnelReadModel()
    projector = Projector(sqlite_app, store, [model])
    handlers = model.handlers()
    calls = {"n": 0}

    class Killed(BaseException):
        """The process dies mid-batch (an event a handler cannot apply is another matter: it stops the model)."""

    def crash_on_third_win(event: Any, rows: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise Killed("projector killed mid-batch")
        handlers[type(event)](event, rows)

    projector._handlers["funnel"] = {cls: crash_on_third_win for cls in handlers}
    with pytest.raises(Killed):
        projector.catch_up(limit=1000)

    assert projector.positions()["funnel"] == 0 and _won(store) == 0  # the whole batch rolled back
    projector._handlers["funnel"] = handlers
    projector.catch_up(limit=2)
    assert _won(store) == 3 and projector.status()[0].lag == 0


def test_two_projectors_cannot_both_apply_the_same_batch(sqlite_app: CrmApplication) -> None:
    _won_deal(sqlite_app, 0)
    first, second = (Projector(sqlite_app, ReadModelStore(sqlite_app.database), [FunnelReadModel()]) for _ in range(2))
    stale = second.positions()
    first.catch_up()

    second.positions = lambda: stale  # type: ignore[method-assign] - it read the position before `first` moved it
    with pytest.raises(ProjectionRace):
        second.run_batch()
    assert _won(first.store) == 1


def test_the_follower_keeps_the_read_models_current(sqlite_app: CrmApplication) -> None:
    store = ReadModelStore(sqlite_app.database)
    projector = Projector(sqlite_app, store, [FunnelReadModel()])
    stop = threading.Event()
    follower = threading.Thread(target=projector.follow, args=(stop, 0.01))
    follower.start()
    try:
        _won_deal(sqlite_app, 0)
        deadline = time.monotonic() + 10
        while projector.status()[0].lag and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _won(store) == 1
        _won_deal(sqlite_app, 5)
        while projector.status()[0].lag and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _won(store) == 2
    finally:
        stop.set()
        follower.join(timeout=5)
    assert not follower.is_alive()


def test_projectors_taking_turns_leave_what_one_rebuild_leaves(sqlite_app: CrmApplication) -> None:
    """Each keeps rows from its last batch; once the other has moved the positions, it must read them afresh."""
    customer = sqlite_app.register_customer(RegisterCustomer("王芳", "华南", "制造", "web"), at(0))
    deal = sqlite_app.open_deal(OpenDeal(customer, "MES", "500", owner="李娜"), at(0))
    for day, stage in enumerate(("first_contact", "needs_analysis", "proposal", "negotiation"), start=1):
        sqlite_app.change_stage(ChangeStage(deal, stage, ""), at(day))
        sqlite_app.log_touch(LogTouch(customer, "phone", "outbound", "跟进"), at(day))
    store = ReadModelStore(sqlite_app.database)
    projectors = [projector_for(sqlite_app, ReadModelStore(sqlite_app.database)) for _ in range(2)]
    turn = 0
    while projectors[turn % 2].run_batch(limit=1):
        turn += 1
    instant = at(10).occurred_at
    taken_in_turns = summaries(sqlite_app, store, instant)

    projectors[0].rebuild()
    assert turn > 8 and summaries(sqlite_app, store, instant) == taken_in_turns


def test_rows_kept_between_batches_are_bounded_and_the_latest_written(sqlite_app: CrmApplication) -> None:
    table = Table("kept", (("k", "INTEGER"), ("v", "TEXT")), ("k",))
    store = ReadModelStore(sqlite_app.database)
    with store.transaction() as cursor:
        for statement in table.ddl():
            cursor.execute(statement)
        rows = Rows(cursor, [table])
        for k in range(10):
            rows.put(table, {"k": k, "v": "新"})
        rows.put(table, {"k": 0, "v": "改"})
        rows.flush()
    rows.trim(3)

    with store.transaction() as cursor:
        cursor.execute("UPDATE kept SET v = 'elsewhere'")
        kept = rows.bind(cursor)
        assert [kept.get(table, k)["v"] for k in (0, 8, 9, 1)] == ["改", "新", "新", "elsewhere"]


class _NewerFunnel(FunnelReadModel):
    """The funnel read model as a later version might define it: one more index."""

    _last = FunnelReadModel.tables[-1]
    tables = (*FunnelReadModel.tables[:-1],
              Table(_last.name, _last.columns, _last.key, (*_last.indexes, ("at",)), _last.json_columns))


def test_a_read_model_whose_tables_changed_is_dropped_and_built_again(sqlite_app: CrmApplication) -> None:
    _won_deal(sqlite_app, 0)
    store = ReadModelStore(sqlite_app.database)
    Projector(sqlite_app, store, [FunnelReadModel()]).catch_up()
    _won_deal(sqlite_app, 5)

    newer = Projector(sqlite_app, store, [_NewerFunnel()])
    assert newer.positions() == {"funnel": 0} and _won(store) == 0
    newer.catch_up()
    assert _won(store) == 2
    assert Projector(sqlite_app, store, [_NewerFunnel()]).positions() == {"funnel": sqlite_app.event_count()}


def test_read_models_built_before_schemas_were_recorded_are_built_again(sqlite_app: CrmApplication) -> None:
    _won_deal(sqlite_app, 0)
    store = ReadModelStore(sqlite_app.database)
    Projector(sqlite_app, store, [FunnelReadModel()]).catch_up()
    with store.transaction() as cursor:
        cursor.execute("DROP TABLE projection_schemas")

    assert Projector(sqlite_app, store, [FunnelReadModel()]).positions() == {"funnel": 0}


class _RevisedFunnel(FunnelReadModel):
    """The funnel whose handlers write something new into the same tables (issue 12: lost per furthest stage)."""

    revision = FunnelReadModel.revision + 1


def test_a_read_model_whose_revision_changed_is_built_again_and_revision_0_keeps_old_fingerprints(
        sqlite_app: CrmApplication) -> None:
    _won_deal(sqlite_app, 0)
    store = ReadModelStore(sqlite_app.database)
    Projector(sqlite_app, store, [FunnelReadModel()]).catch_up()

    assert Projector(sqlite_app, store, [_RevisedFunnel()]).positions() == {"funnel": 0}
    unrevised = type("Unrevised", (FunnelReadModel,), {"revision": 0})()
    ddl = "\n".join(statement for table in FunnelReadModel.tables for statement in table.ddl())
    assert schema_fingerprint(unrevised) == hashlib.sha256(ddl.encode()).hexdigest()[:16]
