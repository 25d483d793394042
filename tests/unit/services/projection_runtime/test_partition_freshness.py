"""Read-your-writes per partition: the partitioned projector keeps each (read model, partition)'s last
position with its offset; a wait for `partition:position` returns once applied, times out otherwise, refuses a
position its shard has not recorded; bad values are refused with a sentence; the lag when the ends are known."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.application import CrmApplication
from services.commands import CaptureLead
from services.projection_runtime.partition_freshness import (BadPartitionPosition, BeyondShardHead,
                                                             NotYetAppliedInPartitions, PartitionPosition,
                                                             parse_positions, partition_freshness,
                                                             partition_states, read_partition_positions,
                                                             wait_for_partitions)
from services.projection_runtime.partitioned import Delivery, PartitionedProjector
from services.projection_runtime.projector import Failure, ReadModelStopped
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import at
from tests.unit.services.projection_runtime.test_partitioned import Counts, Other

NAMES = ["test_counts", "test_other"]


@pytest.fixture
def leads(crm: CrmApplication) -> list[Any]:
    """Four lead captures (sealed, as a consumer decodes them), to deliver by hand."""
    for i in range(4):
        crm.capture_lead(CaptureLead(f"线索{i}", "华东", "零售", "web"), at(i))
    return [event for _, event in crm.read_log() if type(event).__qualname__ == "Lead.Captured"]


@pytest.fixture
def projector(tmp_path: Path) -> Iterator[PartitionedProjector]:
    """Two read models on an SQLite file (its store: `projector.store`)."""
    projector = PartitionedProjector(ReadModelStore(database_from_url(f"sqlite:///{tmp_path / 'read.db'}")),
                                     [Counts(), Other()])
    yield projector
    projector.store.close()


@pytest.fixture
def store(projector: PartitionedProjector) -> ReadModelStore:
    return projector.store


@pytest.mark.parametrize(("text", "wanted"), [
    ("3:17", [(3, 17)]),
    (" 41:5,3:17 ", [(3, 17), (41, 5)]),
    ("3:17,3:20,3:2", [(3, 20)]),  # one position per partition: the highest
    ("63:9223372036854775807", [(63, 2**63 - 1)]),
])
def test_positions_are_partition_position_pairs(text: str, wanted: list[tuple[int, int]]) -> None:
    assert parse_positions(text) == [PartitionPosition(*pair) for pair in wanted]
    assert str(parse_positions(text)[0]) == f"{wanted[0][0]}:{wanted[0][1]}"


@pytest.mark.parametrize(("text", "says"), [
    ("", "partition:position pairs"), ("17", "partition:position pairs"), ("x:1", "partition:position pairs"),
    ("3:17;4:1", "partition:position pairs"), ("-1:5", "partition:position pairs"), ("3:", "partition:position"),
    ("64:1", "below 64"), ("3:0", "between 1 and"), ("3:9223372036854775808", "between 1 and"),
    (",".join(f"{p % 64}:1" for p in range(65)), "at most 64"),
])
def test_bad_positions_are_refused_with_a_sentence(text: str, says: str) -> None:
    with pytest.raises(BadPartitionPosition, match=says):
        parse_positions(text)


def test_each_partitions_last_applied_position_is_kept_with_its_offset(
        projector: PartitionedProjector, store: ReadModelStore, leads: list[Any]) -> None:
    projector.apply([Delivery(1, 0, leads[0], 5), Delivery(2, 0, leads[1], 7), Delivery(1, 1, leads[2], 9)])
    projector.apply([Delivery(1, 2, leads[3])])  # a delivery without a position keeps the last one known

    positions = read_partition_positions(store, NAMES, [1, 2, 3])

    assert positions == {(name, p): n for name in NAMES for p, n in ((1, 9), (2, 7))}
    assert partition_freshness(store, NAMES, [1, 2, 3]).headers() == {"X-Read-Model-Position": "1:9,2:7,3:0"}


def test_a_wait_returns_once_the_projector_applied_the_position(projector: PartitionedProjector,
                                                                store: ReadModelStore, leads: list[Any]) -> None:
    projector.apply([Delivery(4, 0, leads[0], 3)])
    slept: list[float] = []

    def consumer_applies(seconds: float) -> None:  # the consumer's batch arrives during the first pause
        slept.append(seconds)
        projector.apply([Delivery(4, 1, leads[1], 11), Delivery(5, 0, leads[2], 12)])

    found = wait_for_partitions(store, NAMES, parse_positions("4:11,5:12"), lambda p: 12, sleep=consumer_applies)

    assert len(slept) == 1 and found.headers()["X-Read-Model-Position"] == "4:11,5:12"


def test_a_wait_times_out_saying_what_was_applied(projector: PartitionedProjector, store: ReadModelStore,
                                                  leads: list[Any]) -> None:
    projector.apply([Delivery(4, 0, leads[0], 3)])

    with pytest.raises(NotYetAppliedInPartitions, match=r"applied 4:3, not yet 4:11 .*projections consume") as late:
        wait_for_partitions(store, NAMES, parse_positions("4:11"), lambda p: 20, longest=0.05)
    assert late.value.found.applied == (PartitionPosition(4, 3),)


def test_a_position_beyond_its_shards_log_is_refused_at_once(projector: PartitionedProjector,
                                                             store: ReadModelStore) -> None:
    with pytest.raises(BeyondShardHead, match="partition 4's shard ends at position 12; there is no position 13"):
        wait_for_partitions(store, NAMES, parse_positions("4:13"), lambda p: 12, sleep=pytest.fail)


def test_one_read_model_behind_holds_the_wait(projector: PartitionedProjector, store: ReadModelStore,
                                              leads: list[Any]) -> None:
    projector.apply([Delivery(4, 0, leads[0], 3)])
    PartitionedProjector(store, [Counts()]).apply([Delivery(4, 1, leads[1], 8)])  # test_other still at 3

    assert partition_freshness(store, NAMES, [4]).applied == (PartitionPosition(4, 3),)
    assert partition_freshness(store, ["test_counts"], [4]).applied == (PartitionPosition(4, 8),)


def test_the_lag_is_reported_when_the_partitions_ends_are_known(projector: PartitionedProjector,
                                                                store: ReadModelStore, leads: list[Any]) -> None:
    projector.apply([Delivery(1, 0, leads[0], 5), Delivery(2, 3, leads[1], 7)])

    found = partition_freshness(store, NAMES, heads={1: 1, 2: 10})  # end offsets: the next offset to come

    assert found.lag == 6 and found.headers() == {"X-Read-Model-Lag": "6"}
    assert partition_freshness(store, NAMES).headers() == {}


def test_a_stopped_read_model_refuses_the_answer(projector: PartitionedProjector, store: ReadModelStore,
                                                 leads: list[Any]) -> None:
    projector._stop(Delivery(6, 0, leads[0], 2), Failure("test_other", 0, "a", "Lead.Captured", "boom", "now"))

    with pytest.raises(ReadModelStopped):
        partition_freshness(store, NAMES, [6])
    state, = partition_states(store, NAMES)
    assert (state.partition, [stop.failure.name for stop in state.stops]) == (6, ["test_other"])


def test_an_offsets_table_made_before_positions_gets_the_column(tmp_path: Path, leads: list[Any]) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute('CREATE TABLE projection_offsets (name TEXT, "partition" INTEGER, "offset" BIGINT, '
                    'PRIMARY KEY (name, "partition"))')
        old.execute("INSERT INTO projection_offsets VALUES ('test_counts', 1, 0)")
    store = ReadModelStore(database_from_url(f"sqlite:///{path}"))
    try:
        projector = PartitionedProjector(store, [Counts()])
        assert read_partition_positions(store, ["test_counts"], [1]) == {}  # kept, with no position yet

        projector.apply([Delivery(1, 1, leads[0], 4)])

        assert read_partition_positions(store, ["test_counts"], [1]) == {("test_counts", 1): 4}
        assert projector.offsets() == {("test_counts", 1): 1}
    finally:
        store.close()


def test_no_partitioned_projector_yet_means_nothing_applied(store: ReadModelStore) -> None:
    assert read_partition_positions(store, NAMES, [1]) == {} and partition_states(store, NAMES) == []
