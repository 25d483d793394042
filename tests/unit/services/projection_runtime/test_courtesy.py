"""A process's courteous feeding of a shared read model: left to another projector while that one moves it, taken
over `GRACE` seconds after it stopped; read only when consumers feed it."""

from __future__ import annotations

from contextlib import closing

from projections.segments import SegmentsReadModel
from services.commands import RegisterCustomer
from services.projection_runtime.courtesy import GRACE, CourteousFeeder, lock_beside_projector
from services.projection_runtime.projector import FeederConflict, Projector
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at
from tests.support.edited_history import sqlite_app


def _register(crm, name: str) -> None:
    crm.register_customer(RegisterCustomer(name, "华东", "零售", "web"), at(0))


def test_another_feeder_keeps_the_read_model_until_it_stops_for_the_grace(tmp_path):
    crm = sqlite_app(tmp_path / "crm.sqlite3")
    with closing(ReadModelStore(crm.database)) as store:
        feeder = CourteousFeeder("test", Projector(crm, store, [SegmentsReadModel()]))
        follower = Projector(crm, store, [SegmentsReadModel()])  # `crm projections follow`, say
        _register(crm, "张三")
        assert feeder.catch_up() == 1  # nobody else moved it: fed here
        _register(crm, "李四")
        follower.catch_up()
        _register(crm, "王五")
        assert feeder.catch_up() == 0 and feeder.position() < crm.event_count()  # moved by another: left to it
        feeder._other_moved_at -= GRACE  # the follower gone for the grace
        assert feeder.catch_up() == 1 and feeder.position() == crm.event_count()
    crm.close()


def test_a_read_model_consumers_feed_is_only_read(tmp_path, monkeypatch):
    crm = sqlite_app(tmp_path / "crm.sqlite3")
    with closing(ReadModelStore(crm.database)) as store:
        projector = Projector(crm, store, [SegmentsReadModel()])
        feeder = CourteousFeeder("test", projector)

        def refused(strict: bool = True) -> int:
            raise FeederConflict("consumers feed segments")
        monkeypatch.setattr(projector, "catch_up", refused)
        _register(crm, "张三")
        assert feeder.catch_up() == 0 and feeder.catch_up() == 0 and feeder._read_only
    crm.close()


def test_a_lock_beside_the_projectors(tmp_path):
    assert lock_beside_projector(tmp_path / "crm.sqlite3.projector.lock", "segment-changes") == \
        tmp_path / "crm.sqlite3.segment-changes.lock"
    assert lock_beside_projector(None, "segment-changes") is None
