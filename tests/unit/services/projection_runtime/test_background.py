"""`crm serve`'s background projector: of the processes on one log only the lock holder follows it, and when
that process is killed (SIGKILL, no clean-up) a standing-by one takes over, so answers become fresh again; read
models that consumers feed are refused (logged, `refused` says why for /health)."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from domain.base import Meta
from services.application import CrmApplication
from services.commands import RegisterCustomer
from services.projection_runtime import background
from services.projection_runtime.background import BackgroundProjector, lock_path
from services.projection_runtime.freshness import wait_for_position
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

REPO = Path(__file__).resolve().parents[4]
LEADER = """
import sys, time
from services.application import CrmApplication
from services.projection_runtime.background import BackgroundProjector
from services.settings import database_from_url
BackgroundProjector(CrmApplication(database_from_url(sys.argv[1]))).start()
time.sleep(600)
"""


def _held(lock: Path) -> bool:
    with lock.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _register(crm: CrmApplication, name: str) -> int:
    crm.register_customer(RegisterCustomer(name, "华东", "零售", "web"), Meta(actor="test"))
    return crm.event_count()


def test_a_standby_takes_over_when_the_following_process_is_killed(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    crm = CrmApplication(database_from_url(url))
    store = ReadModelStore(crm.database)
    lock = lock_path(crm.database)
    assert lock is not None
    leader = subprocess.Popen([sys.executable, "-c", LEADER, url], cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    standby = None
    try:
        deadline = time.monotonic() + 30
        while not _held(lock):
            assert time.monotonic() < deadline and leader.poll() is None, "the first process never followed the log"
            time.sleep(0.05)
        wait_for_position(crm, store, ["timeline"], _register(crm, "张三"), longest=20)  # the leader applies it

        monkeypatch.setattr(background, "STANDBY_POLL", 0.1)
        standby = BackgroundProjector(crm)
        standby.start()
        leader.send_signal(signal.SIGKILL)  # between batches or in one: the kernel frees its lock either way
        leader.wait(timeout=10)

        found = wait_for_position(crm, store, ["timeline"], _register(crm, "李四"), longest=20)
        assert found.position == found.head
    finally:
        if leader.poll() is None:
            leader.kill()
        if standby is not None:
            standby.stop()
        store.close()
        crm.close()


def test_a_projector_refuses_read_models_consumers_feed_and_says_why(tmp_path: Path) -> None:
    crm = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}"))
    _register(crm, "张三")
    store = ReadModelStore(crm.database)
    projector_for(crm, store)  # the tables; then a consumer applies the funnel's partition 0, offset 0
    with store.transaction() as cursor:
        cursor.execute('INSERT INTO projection_offsets (name, "partition", "offset") VALUES (\'funnel\', 0, 0)')
    projector = BackgroundProjector(crm)
    projector.start()
    projector.thread.join(30)

    assert not projector.thread.is_alive() and "fed per partition" in (projector.refused or "")
    assert set(projector_for(crm, store).positions().values()) == {0}  # nothing fed
    store.close()
    crm.close()
