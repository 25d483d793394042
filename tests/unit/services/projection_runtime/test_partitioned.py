"""The partitioned projector's guarantees, each with a small read model that shows it: offsets per (read
model, partition) committed with the rows and guarded, redeliveries passed by, reference events applied once
whatever partition brings them first, a stop confined to one partition, the lag per partition, and one feeder
per read model (this projector or the log follower)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from domain.campaign import Campaign
from domain.lead import Lead
from domain.pipeline import Pipeline
from domain.partitions import in_partition
from projections.read_model import ReadModel, Rows
from projections.tables import Table
from services.application import CrmApplication
from services.commands import CaptureLead, LaunchCampaign, PlanCampaign
from services.projection_runtime.partitioned import Delivery, PartitionedProjector, partition_lag
from services.projection_runtime.projector import FeederConflict, ProjectionRace, Projector, read_failures
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import at
from tests.support.equivalence import partition_streams, sealed_log

COUNTS = Table("test_counts", (("kind", "TEXT"), ("n", "INTEGER")), ("kind",))


class Counts(ReadModel):
    """How many events of each class it applied: every application shows (a sum, not a fact keyed by event)."""

    name = "test_counts"
    tables = (COUNTS,)

    def __init__(self, refuse: Callable[[Any], bool] = lambda event: False) -> None:
        self.refuse = refuse

    def handlers(self) -> dict[type, Callable[[Any, Rows], None]]:
        return dict.fromkeys((Campaign.Planned, Campaign.Launched, Lead.Captured, Lead.Assigned), self._count)

    def _count(self, event: Any, rows: Rows) -> None:
        if self.refuse(event):
            raise ValueError("refused")
        kind = type(event).__qualname__
        row = rows.get(COUNTS, kind) or {"kind": kind, "n": 0}
        rows.put(COUNTS, {**row, "n": row["n"] + 1})


class Other(Counts):
    name = "test_other"
    tables = (Table("test_other", COUNTS.columns, COUNTS.key),)

    def _count(self, event: Any, rows: Rows) -> None:
        kind = type(event).__qualname__
        row = rows.get(self.tables[0], kind) or {"kind": kind, "n": 0}
        rows.put(self.tables[0], {**row, "n": row["n"] + 1})


@pytest.fixture
def streams(crm: CrmApplication) -> list[list[Delivery]]:
    """A campaign (reference: in every partition) and six leads spread over three partitions (the default
    pipelines left out)."""
    campaign = crm.plan_campaign(PlanCampaign("春季活动", "event", "1000"), at(0))
    crm.launch_campaign(LaunchCampaign(campaign), at(1))
    for i in range(6):
        crm.capture_lead(CaptureLead(f"线索{i}", "华东", "零售", "web", campaign_id=campaign, id=in_partition(i)),
                         at(2 + i))  # two in each of the three test partitions (partition mod 3), not by chance
    return partition_streams([e for e in sealed_log(crm) if not isinstance(e, Pipeline.Event)])


@pytest.fixture
def store() -> Iterator[ReadModelStore]:
    store = ReadModelStore(database_from_url("memory://"))
    yield store
    store.close()


def counts(store: ReadModelStore, table: str = "test_counts") -> dict[str, int]:
    return dict(store.query(f"SELECT kind, n FROM {table}"))


def everything(streams: list[list[Delivery]]) -> list[Delivery]:
    return [d for stream in streams for d in stream]


def test_offsets_per_read_model_and_partition_and_redeliveries_passed_by(store: ReadModelStore,
                                                                         streams: list[list[Delivery]]) -> None:
    projector = PartitionedProjector(store, [Counts()])
    assert projector.offsets() == {}

    assert projector.apply(streams[0][:3] + streams[1][:1]) == 3  # partition 1's first: the campaign again
    assert projector.offsets() == {("test_counts", 0): 2, ("test_counts", 1): 0}
    assert projector.apply(streams[0][:3]) == 0  # redelivered after a crash: nothing twice
    projector.apply(everything(streams))

    assert projector.offsets() == {("test_counts", p): len(stream) - 1 for p, stream in enumerate(streams)}
    assert counts(store) == {"Campaign.Planned": 1, "Campaign.Launched": 1, "Lead.Captured": 6}


def test_a_reference_event_is_applied_once_whichever_partition_brings_it_first(
        store: ReadModelStore, streams: list[list[Delivery]]) -> None:
    projector = PartitionedProjector(store, [Counts()])
    planned = [d for d in everything(streams) if isinstance(d.event, Campaign.Planned)]
    assert sorted(d.partition for d in planned) == [0, 1, 2]

    for stream in reversed(streams):  # partition 2 first, in its own batches
        projector.apply(stream)

    assert counts(store)["Campaign.Planned"] == 1


def test_another_consumer_moving_an_offset_first_makes_the_batch_change_nothing(
        store: ReadModelStore, streams: list[list[Delivery]]) -> None:
    mine, theirs = PartitionedProjector(store, [Counts()]), PartitionedProjector(store, [Counts()])
    theirs.apply(streams[0][:2])
    mine.offsets = lambda: {}  # type: ignore[method-assign]  # what it saw before the rebalance

    with pytest.raises(ProjectionRace):
        mine.apply(streams[0][:4])

    assert theirs.offsets() == {("test_counts", 0): 1}
    assert sum(counts(store).values()) == 2


def test_a_read_model_stops_in_one_partition_and_goes_on_in_the_others(store: ReadModelStore,
                                                                       streams: list[list[Delivery]]) -> None:
    bad = next(d for d in everything(streams) if isinstance(d.event, Lead.Captured))
    projector = PartitionedProjector(store, [Counts(refuse=lambda e: e.originator_id == bad.event.originator_id),
                                             Other()])

    projector.apply(everything(streams))

    offsets = projector.offsets()
    assert offsets[("test_counts", bad.partition)] == bad.offset - 1  # waits before the event it cannot apply
    assert all(offsets[("test_counts", p)] == len(stream) - 1 for p, stream in enumerate(streams) if p != bad.partition)
    assert all(offsets[("test_other", p)] == len(stream) - 1 for p, stream in enumerate(streams))
    (stop,) = projector.failures().values()
    assert (stop.partition, stop.failure.position, stop.failure.event_type) == (bad.partition, bad.offset,
                                                                               "Lead.Captured")
    assert "test_counts" in read_failures(store, ["test_counts"])  # its queries refuse, totals would be wrong

    projector.resume("test_counts", bad.partition, skip=True)
    projector.apply(everything(streams))

    assert projector.offsets()[("test_counts", bad.partition)] == len(streams[bad.partition]) - 1
    assert counts(store)["Lead.Captured"] == 5 and read_failures(store, ["test_counts"]) == {}


def test_lag_per_read_model_and_partition(store: ReadModelStore, streams: list[list[Delivery]]) -> None:
    projector = PartitionedProjector(store, [Counts()])
    projector.apply(streams[0][:2])
    heads = {p: len(stream) for p, stream in enumerate(streams)}

    assert partition_lag(store, ["test_counts"], heads) == {
        ("test_counts", 0): len(streams[0]) - 2, ("test_counts", 1): len(streams[1]),
        ("test_counts", 2): len(streams[2])}
    assert projector.lag({3: 0}) == {("test_counts", 3): 0}


def test_deliveries_out_of_order_within_a_partition_are_refused(store: ReadModelStore,
                                                                streams: list[list[Delivery]]) -> None:
    projector = PartitionedProjector(store, [Counts()])

    with pytest.raises(ValueError, match="partition 0 out of order"):
        projector.apply([streams[0][1], streams[1][0], streams[0][0]])

    assert projector.offsets() == {}
    assert projector.apply([streams[0][0], streams[0][1]]) == 2


# --- one feeder per read model: the log follower or the partitioned projector, never both ------------------

def test_a_read_model_the_follower_fed_is_refused_per_partition(crm: CrmApplication, store: ReadModelStore,
                                                                streams: list[list[Delivery]]) -> None:
    Projector(crm, store, [Counts()]).catch_up()
    before = counts(store)

    with pytest.raises(FeederConflict, match=r"test_counts are fed by the log follower.*crm projections reset "
                                             r"test_counts"):
        PartitionedProjector(store, [Counts()])
    PartitionedProjector(store, [Other()]).apply(everything(streams))  # a read model the follower never fed: fine
    assert counts(store) == before


def test_a_follower_that_feeds_after_set_up_stops_the_next_partitioned_batch(
        crm: CrmApplication, store: ReadModelStore, streams: list[list[Delivery]]) -> None:
    partitioned = PartitionedProjector(store, [Counts()])  # set up while nothing fed it
    Projector(crm, store, [Counts()]).catch_up()
    before = counts(store)

    with pytest.raises(FeederConflict, match="fed by the log follower"):
        partitioned.apply(everything(streams))
    assert counts(store) == before and partitioned.offsets() == {}


def test_the_follower_refuses_a_read_model_fed_per_partition(crm: CrmApplication, store: ReadModelStore,
                                                            streams: list[list[Delivery]]) -> None:
    PartitionedProjector(store, [Counts()]).apply(streams[0])
    before = counts(store)
    follower = Projector(crm, store, [Counts()])

    with pytest.raises(FeederConflict, match=r"test_counts are fed per partition by `crm projections consume`.*"
                                             r"CRM_SERVE_PROJECTOR=0"):
        follower.catch_up()
    assert counts(store) == before and follower.positions() == {"test_counts": 0}


def test_a_rebuild_gives_the_read_model_to_the_follower_and_a_reset_to_whichever_feeds_next(
        crm: CrmApplication, store: ReadModelStore, streams: list[list[Delivery]]) -> None:
    partitioned = PartitionedProjector(store, [Counts()])
    partitioned.apply(everything(streams))
    expected = counts(store)
    follower = Projector(crm, store, [Counts()])

    follower.rebuild()  # the partition offsets are forgotten: the follower feeds it now
    assert counts(store) == expected and partitioned.offsets() == {}
    with pytest.raises(FeederConflict):
        partitioned.apply(everything(streams))

    follower.reset()  # empty, fed by neither
    assert counts(store) == {} and follower.positions() == {"test_counts": 0}
    PartitionedProjector(store, [Counts()]).apply(everything(streams))
    assert counts(store) == expected
