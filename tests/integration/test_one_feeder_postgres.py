"""One feeder per read model on PostgreSQL, where the follower and a consumer run at once: a partitioned batch
holds the read model's position row (FOR SHARE) until it commits, so a follower's batch that started meanwhile
waits, then sees the offsets and refuses — neither applies an event the other applied."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from domain.lead import Lead
from projections.read_model import ReadModel, Rows
from projections.tables import Table
from services.application import CrmApplication
from services.commands import CaptureLead
from services.projection_runtime.partitioned import PartitionedProjector
from services.projection_runtime.projector import FeederConflict, Projector
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at
from tests.support.equivalence import partition_streams, sealed_log

CAPTURED = Table("test_captured", (("kind", "TEXT"), ("n", "INTEGER")), ("kind",))


class Captured(ReadModel):
    """Counts captured leads; `pause` runs inside the batch's transaction, before its first row."""

    name = "test_captured"
    tables = (CAPTURED,)

    def __init__(self, pause: Callable[[], None] = lambda: None) -> None:
        self.pause = pause

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return {Lead.Captured: self._count}

    def _count(self, event: Any, rows: Rows) -> None:
        self.pause()
        row = rows.get(CAPTURED, "lead") or {"kind": "lead", "n": 0}
        rows.put(CAPTURED, {**row, "n": row["n"] + 1})


def test_a_follower_starting_during_a_partitioned_batch_refuses(crm_pg: CrmApplication) -> None:
    for i in range(3):
        crm_pg.capture_lead(CaptureLead(f"线索{i}", "华东", "零售", "web"), at(i))
    deliveries = [d for stream in partition_streams(sealed_log(crm_pg)) for d in stream]
    inside, go = threading.Event(), threading.Event()
    stores = [ReadModelStore(crm_pg.database) for _ in range(2)]
    partitioned = PartitionedProjector(stores[0], [Captured(pause=lambda: (inside.set(), go.wait(10)))])
    follower = Projector(crm_pg, stores[1], [Captured()])
    refused: list[BaseException] = []

    batch = threading.Thread(target=partitioned.apply, args=(deliveries,))
    batch.start()
    assert inside.wait(10), "the partitioned batch never began"
    following = threading.Thread(target=lambda: _catch(refused, follower.catch_up))
    following.start()
    following.join(1)
    assert following.is_alive(), "the follower's batch should wait for the partitioned one's lock"
    go.set()
    batch.join(10)
    following.join(10)

    assert len(refused) == 1 and isinstance(refused[0], FeederConflict)
    assert follower.positions() == {"test_captured": 0}
    assert stores[0].query("SELECT n FROM test_captured") == [(3,)]  # once each, by the consumer only
    with pytest.raises(FeederConflict):
        Projector(crm_pg, stores[1], [Captured()]).catch_up()
    for store in stores:
        store.close()


def _catch(found: list[BaseException], work: Callable[[], Any]) -> None:
    try:
        work()
    except BaseException as error:  # noqa: BLE001 - the test looks at it
        found.append(error)
