"""Where a member of the projectors' group reads from (Kafka and projector stubbed): a partition assigned to
it starts at the read store's offsets, never Kafka's; after a race or a failed batch every partition is sought
again from the store; offsets go to Kafka only after the read store committed; a message it cannot decode
stops only the read models handling it, in its partition."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.utils import get_topic
from kafka.structs import TopicPartition

from domain.lead import Lead
from gateways.kafka.projection_consumer import ProjectionConsumer, lag
from gateways.kafka.projection_consumer import stored_event_of as real_stored_event_of
from services.application import CrmApplication
from services.projection_runtime.partitioned import PartitionedProjector
from services.projection_runtime.projector import ProjectionRace
from services.projection_runtime.registry import READ_MODELS
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

TOPIC = "crm.events"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


@dataclass
class _Record:
    partition: int
    offset: int
    topic: str = TOPIC
    headers: list = field(default_factory=list)


@dataclass
class _Consumer:
    """Polls answer from `script`: each entry is (partitions assigned during that poll or None, records)."""

    script: list = field(default_factory=list)
    assigned: set = field(default_factory=set)
    seeks: list = field(default_factory=list)
    commits: list = field(default_factory=list)

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def poll(self, timeout_ms: int) -> dict[TopicPartition, list[_Record]]:
        assign, records = self.script.pop(0)
        if assign is not None:
            self.listener.on_partitions_revoked(self.assigned)
            self.assigned = set(assign)
            self.listener.on_partitions_assigned(assign)
        batch: dict[TopicPartition, list[_Record]] = {}
        for record in records:
            batch.setdefault(TopicPartition(TOPIC, record.partition), []).append(record)
        return batch

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition.partition, offset))

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends.get(tp, 0) for tp in partitions}

    ends: dict = field(default_factory=dict)

    def commit_async(self, offsets: dict) -> None:
        self.commits.append({tp.partition: meta.offset for tp, meta in offsets.items()})


@dataclass
class _Projector:
    stored: dict = field(default_factory=lambda: {("funnel", 0): 4, ("timeline", 0): 2})  # partition 1: none
    names: tuple = ("funnel", "timeline")
    applied: list = field(default_factory=list)
    positions: list = field(default_factory=list)
    fail_with: Exception | None = None

    def offsets(self) -> dict[tuple[str, int], int]:
        return dict(self.stored)

    def apply(self, deliveries: list) -> int:
        if self.fail_with is not None:
            raise self.fail_with
        self.applied.append([(d.partition, d.offset) for d in deliveries])
        self.positions.extend(d.position for d in deliveries)
        return len(deliveries)


class _Mapper:
    def to_sealed_event(self, stored: Any) -> Any:
        return stored


def _member(script: list) -> tuple[ProjectionConsumer, _Consumer, _Projector]:
    consumer, projector = _Consumer(script), _Projector()
    member = ProjectionConsumer(_Mapper(), projector, consumer, TOPIC)  # type: ignore[arg-type]
    return member, consumer, projector


@pytest.fixture(autouse=True)
def _no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateways.kafka.projection_consumer.stored_event_of", lambda record: record)


def test_an_assigned_partition_starts_after_the_lowest_stored_offset() -> None:
    member, consumer, projector = _member([({P0, P1}, [_Record(0, 0), _Record(1, 0)]),  # read from Kafka's offset
                                           (None, [_Record(0, 3), _Record(1, 0)])])
    assert member.poll_once() == 0 and projector.applied == []  # dropped: not yet sought
    assert member.poll_once() == 2
    assert sorted(consumer.seeks) == [(0, 3), (1, 0)]  # min(4, 2) + 1 and -1 + 1
    assert projector.applied == [[(0, 3), (1, 0)]] and consumer.commits == [{0: 4, 1: 1}]


def test_after_a_race_every_partition_is_sought_again_from_the_store() -> None:
    member, consumer, projector = _member([({P0}, []), (None, [_Record(0, 3)]), (None, [])])
    member.poll_once()
    projector.fail_with = ProjectionRace("moved")
    assert member.poll_once() == 0 and consumer.commits == []
    projector.fail_with, projector.stored[("timeline", 0)] = None, 9
    member.poll_once()
    assert consumer.seeks == [(0, 3), (0, 5)]  # the other member's progress: min(4, 9) + 1


def test_a_failed_batch_is_read_again_and_nothing_is_committed_to_kafka() -> None:
    member, consumer, projector = _member([({P0}, []), (None, [_Record(0, 3)]), (None, [_Record(0, 3)])])
    member.poll_once()
    projector.fail_with = psycopg.OperationalError("server closed the connection")
    with pytest.raises(psycopg.OperationalError):
        member.poll_once()
    projector.fail_with = None
    assert member.poll_once() == 1
    assert consumer.seeks == [(0, 3), (0, 3)] and consumer.commits == [{0: 4}]


def test_each_delivery_carries_its_position_in_its_shards_log() -> None:
    sequenced = _Record(0, 4, headers=[("ce_sequence", b"1042")])
    member, _, projector = _member([({P0}, []), (None, [sequenced, _Record(0, 5)])])  # the second: no header
    member.poll_once()
    member.poll_once()
    assert projector.positions == [1042, None]


def test_lag_counts_the_records_each_read_model_has_not_applied() -> None:
    assert lag({("funnel", 0): 4, ("timeline", 0): 2}, {P0: 5, P1: 3}, ["funnel", "timeline"]) == \
        {("timeline", 0): 2, ("funnel", 1): 3, ("timeline", 1): 3}


def _relayed(partition: int, offset: int, topic: str, state: bytes = b"{}") -> _Record:
    """A message as the relay publishes it (the stored event in headers)."""
    return _Record(partition, offset, headers=[("crm_topic", topic.encode()), ("crm_state", state),
                                               ("ce_subject", str(uuid4()).encode()), ("ce_aggregateversion", b"1")])


def test_a_message_it_cannot_decode_stops_only_its_read_models_in_its_partition(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A type this code does not know (a newer relay, mid-deploy), a state it cannot read, a stray message with
    no stored event: the member goes on; the read models handling the bad type stop in that partition only."""
    monkeypatch.setattr("gateways.kafka.projection_consumer.stored_event_of", real_stored_event_of)
    crm, store = CrmApplication(database_from_url("memory://")), ReadModelStore(database_from_url("memory://"))
    projector = PartitionedProjector(store, [model() for model in READ_MODELS.values()])
    captured = get_topic(Lead.Captured)
    consumer = _Consumer([({P0, P1}, []), (None, [_Record(0, 0), _relayed(0, 1, "domain.lead:Lead.FromTheFuture"),
                                                  _relayed(1, 0, captured, b"not json")])])
    member = ProjectionConsumer(crm.mapper, projector, consumer, TOPIC)  # type: ignore[arg-type]
    member.poll_once()

    assert member.poll_once() == 3  # no exception: the member lives
    stopped = {key: failure.failure for key, failure in projector.failures().items()}
    handling = {name for name, model in READ_MODELS.items() if Lead.Captured in model().handlers()}
    assert handling and set(stopped) == {(name, 1) for name in handling}  # partition 1 only
    assert all(f.event_type == "Lead.Captured" and "cannot be decoded" in f.reason for f in stopped.values())
    assert {key: offset for key, offset in projector.offsets().items() if key[1] == 0} == \
        {(name, 0): 1 for name in READ_MODELS}  # the stray message and the unknown type passed by

    consumer.script.append((None, []))
    consumer.ends = {P0: 2, P1: 1}
    drained = threading.Event()
    member.drain(drained, join_seconds=5)  # `consume --once`: done, though partition 1 stays stopped (review)
    assert drained.is_set()
    store.close()
    crm.close()
