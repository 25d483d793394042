"""Where a member of the projectors' group reads from (Kafka and projector stubbed): a partition assigned to
it starts at the read store's offsets, never Kafka's; after a race or a failed batch every partition is sought
again from the store; offsets go to Kafka only after the read store committed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from kafka.structs import TopicPartition

from gateways.kafka.projection_consumer import ProjectionConsumer, lag
from services.projection_runtime.projector import ProjectionRace

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

    def commit_async(self, offsets: dict) -> None:
        self.commits.append({tp.partition: meta.offset for tp, meta in offsets.items()})


@dataclass
class _Projector:
    stored: dict = field(default_factory=lambda: {("funnel", 0): 4, ("timeline", 0): 2})  # partition 1: none
    names: tuple = ("funnel", "timeline")
    applied: list = field(default_factory=list)
    fail_with: Exception | None = None

    def offsets(self) -> dict[tuple[str, int], int]:
        return dict(self.stored)

    def apply(self, deliveries: list) -> int:
        if self.fail_with is not None:
            raise self.fail_with
        self.applied.append([(d.partition, d.offset) for d in deliveries])
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


def test_lag_counts_the_records_each_read_model_has_not_applied() -> None:
    assert lag({("funnel", 0): 4, ("timeline", 0): 2}, {P0: 5, P1: 3}, ["funnel", "timeline"]) == \
        {("timeline", 0): 2, ("funnel", 1): 3, ("timeline", 1): 3}
