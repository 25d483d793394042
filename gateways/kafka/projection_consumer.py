"""`crm projections consume`: the read models fed from Kafka topic `crm.events` by a consumer group.

Each member of the group (`crm-projectors` by default) gets some of the topic's 64 partitions — one per home
partition — and runs the read models' handlers over their events through the partitioned projector
(services/projection_runtime/partitioned.py), which commits the rows and the offset per (read model,
partition) in one read-store transaction, guarded by the old offsets. So where to read from is the read
store's business, not Kafka's: auto-commit is off, and whenever a partition is assigned (a member joined, died
or left) this member seeks it to the lowest stored offset + 1 over the read models, before handling any of its
records. Offsets are committed to Kafka too, after the database commit and without waiting, only so that the
usual consumer-group lag tools and metrics see progress; nothing reads them back.

Exactly once into the read store, whatever fails:
- a member killed mid-batch rolled nothing in (one transaction); after the rebalance the next owner starts at
  the stored offsets;
- two members briefly owning a partition (a rebalance racing a batch): the second commit finds the offsets
  moved and raises ProjectionRace, changing nothing; the loser seeks its partitions again from the store;
- a broker outage: polls return nothing (or raise KafkaError) until it is back; a PostgreSQL restart: the
  batch rolled back whole, and after a pause (services/healing.py) the partitions are sought again from the
  stored offsets — a commit whose outcome was lost with the connection is then either there (the offsets
  moved: its events are passed by) or not (they are applied): never twice, never lost.

Each message carries the stored event's topic and state (headers `crm_topic`, `crm_state`, set by the relay):
the event rebuilt here is the very one the log's mapper gives, personal fields still sealed, as the log's
projector gives them to the read models (they keep the seals and open them with the key store at query time,
so a forgotten person stays blind here too). A message whose event cannot be decoded (a type or class version
newer than this code, during a rolling deploy) stops only the read models that handle its type, in its
partition, as the log's follower does (`projector._Undecodable`): never the member, which would die on it again
after each restart and hand it to the next. A message with no stored event at all (not the relay's) is passed
by, with a warning: no read model could have applied it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from gateways.kafka.relay import TOPIC, topic_heads
from services.healing import TRANSIENT_DATABASE_ERRORS, follow_until_stopped
from services.projection_runtime.partitioned import Delivery, PartitionedProjector
from services.projection_runtime.projector import ProjectionRace, _Undecodable, transient_errors

GROUP = "crm-projectors"
DEFAULT_POLL_RECORDS = 2000  # records per poll = per read-store transaction (the relay's batch, too)
SESSION_TIMEOUT_MS = 10_000  # a killed member's partitions move after this long (kafka-python's default)
log = logging.getLogger(__name__)


class UnreadableMessage(RuntimeError):
    """A message of the events topic without the stored event (published by something else than the relay,
    or by a relay older than home partitions): the read models cannot be fed from it."""


def stored_event_of(record: Any) -> StoredEvent:
    """The stored event a relay message carries (see the module's docstring)."""
    headers = dict(record.headers or [])
    if not all(headers.get(name) for name in ("crm_topic", "crm_state", "ce_subject", "ce_aggregateversion")):
        raise UnreadableMessage(f"message {record.topic}/{record.partition}/{record.offset} carries no stored "
                                "event (headers crm_topic, crm_state): was it published by `crm relay`?")
    return StoredEvent(originator_id=UUID(headers["ce_subject"].decode()),
                       originator_version=int(headers["ce_aggregateversion"]),
                       topic=headers["crm_topic"].decode(), state=headers["crm_state"])


def position_of(record: Any) -> int | None:
    """The event's position in its shard's log (`ce_sequence`), kept with the offset: what a write's
    `X-Log-Position: partition:position` is compared with (services.projection_runtime.partition_freshness)."""
    sequence = dict(record.headers or []).get("ce_sequence")
    return int(sequence) if sequence else None


class _Reseek(ConsumerRebalanceListener):
    """Marks newly assigned partitions: their positions come from the read store, not from Kafka."""

    def __init__(self, owner: ProjectionConsumer) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        self.owner.unpositioned.difference_update(revoked)

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self.owner.unpositioned.update(assigned)
        if assigned:  # kafka-python also reports an empty first assignment while the group forms
            log.info("projections consume: assigned %d partitions", len(assigned),
                     extra={"component": "projections consume", "action": "assigned", "partitions": len(assigned)})


class ProjectionConsumer:
    def __init__(self, mapper: Mapper[UUID], projector: PartitionedProjector, consumer: KafkaConsumer,
                 topic: str = TOPIC, commit_to_kafka: bool = True) -> None:
        self.mapper, self.projector, self.consumer = mapper, projector, consumer
        self.topic, self.commit_to_kafka = topic, commit_to_kafka
        self.unpositioned: set[TopicPartition] = set()
        self.applied = self.delivered = 0
        consumer.subscribe([topic], listener=_Reseek(self))

    def poll_once(self, timeout_ms: int = 500) -> int:
        """Handle one poll's records; returns how many were delivered to the projector."""
        self._seek_unpositioned()
        batch = self.consumer.poll(timeout_ms=timeout_ms)
        ready = {tp: records for tp, records in batch.items() if tp not in self.unpositioned and records}
        if not ready:  # records of a partition assigned during this poll were read from Kafka's offset: dropped
            return 0
        deliveries = [Delivery(tp.partition, record.offset, self._decode(record), position_of(record))
                      for tp, records in sorted(ready.items()) for record in records]
        try:
            self.applied += self.projector.apply(deliveries)
        except ProjectionRace as race:
            log.info("projections consume: %s; seeking again from the stored offsets", race,
                     extra={"component": "projections consume", "action": "race"})
            self.unpositioned.update(self.consumer.assignment())
            return 0
        except BaseException:
            self.unpositioned.update(self.consumer.assignment())  # the batch rolled back: read it again
            raise
        self.delivered += len(deliveries)
        if self.commit_to_kafka:  # for lag tools only: positions are read from the read store
            self.consumer.commit_async({tp: OffsetAndMetadata(records[-1].offset + 1, "", -1)
                                        for tp, records in ready.items()})
        return len(deliveries)

    def _decode(self, record: Any) -> Any:
        """The record's domain event (personal data sealed), or an `_Undecodable` in its place (see the
        module's docstring); one without a stored event becomes an `_Undecodable` of no type, which every
        read model passes by (its offset moves on)."""
        try:
            stored = stored_event_of(record)
        except UnreadableMessage as error:
            log.warning("projections consume: %s; passed by", error,
                        extra={"component": "projections consume", "action": "pass_by", "partition": record.partition,
                               "offset": record.offset})
            return _Undecodable(None, "", error)
        try:
            return self.mapper.to_sealed_event(stored)
        except transient_errors():
            raise
        except Exception as error:  # noqa: BLE001 - any reason: it is named in the read models' failure
            return _Undecodable(stored.originator_id, stored.topic, error, stored.originator_version)

    def _seek_unpositioned(self) -> None:
        """Seek each partition that needs it to the lowest stored offset + 1 over the read models."""
        self.unpositioned.intersection_update(self.consumer.assignment())
        if not self.unpositioned:
            return
        offsets = self.projector.offsets()
        for tp in list(self.unpositioned):
            self.consumer.seek(tp, min(offsets.get((name, tp.partition), -1) for name in self.projector.names) + 1)
            self.unpositioned.discard(tp)

    def run(self, stop: threading.Event) -> None:
        """Handle records until `stop` is set, riding out database and broker outages."""
        follow_until_stopped("projections consume", self.poll_once, stop, 0, (KafkaError, *TRANSIENT_DATABASE_ERRORS))

    def drain(self, stop: threading.Event, join_seconds: float = 60) -> None:
        """Handle what the topic holds now in this member's partitions, then return (for scripts and tests)."""
        deadline = time.monotonic() + join_seconds

        def step() -> int:
            self.poll_once()
            assigned = self.consumer.assignment()
            if not assigned:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no partition of {self.topic} was assigned within {join_seconds:g} s")
                return 1
            ends = self.consumer.end_offsets(list(assigned))
            stopped = self.projector.failures()  # a read model stopped in a partition waits there for good
            behind = [key for key in lag(self.projector.offsets(), ends, self.projector.names) if key not in stopped]
            if not self.unpositioned and not behind:
                stop.set()
            return 1

        follow_until_stopped("projections consume --once", step, stop, 0, (KafkaError, *TRANSIENT_DATABASE_ERRORS))


def consumer_for(bootstrap: str, group: str = GROUP, poll_records: int = DEFAULT_POLL_RECORDS,
                 session_timeout_ms: int = SESSION_TIMEOUT_MS) -> KafkaConsumer:
    """A group member that never commits by itself (its positions are the read store's)."""
    return KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                         auto_offset_reset="earliest", max_poll_records=poll_records,
                         session_timeout_ms=session_timeout_ms, heartbeat_interval_ms=session_timeout_ms // 3)


def lag(offsets: dict[tuple[str, int], int], ends: dict[TopicPartition, int],
        names: Sequence[str]) -> dict[tuple[str, int], int]:
    """Records of each (read model, partition) not applied yet, given the stored offsets (absent: −1) and the
    partitions' end offsets; only those behind (`partitioned.partition_lag` reads the offsets itself)."""
    return {(name, tp.partition): end - 1 - offsets.get((name, tp.partition), -1)
            for name in names for tp, end in ends.items() if end - 1 > offsets.get((name, tp.partition), -1)}


def consumer_group_lag(bootstrap: str, group: str = GROUP, topic: str = TOPIC) -> dict[int, int]:
    """Records of each partition the group has not committed (Kafka's view of the group, for metrics: the
    read store's own offsets, `lag`, are the truth; these trail them by at most one batch)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="crm-lag")
    try:
        offsets = admin.list_group_offsets(group).get(group, {})  # kafka-python 3's name; {} for a new group
    finally:
        admin.close()
    committed = {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
    return {partition: head + 1 - max(committed.get(partition, 0), 0)
            for partition, head in topic_heads(bootstrap, topic).items()}
