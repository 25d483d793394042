"""The shards' relays and a consumer in one process, without Kafka: each shard's new events become
deliveries of their home partitions (reference events to every partition the shard owns), each carrying its
position in the shard's log, as `crm relay --shard N` publishes them (`ce_sequence`) and `crm projections
consume` hands them to the partitioned projector."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from domain.partitions import is_reference, partition_of
from services.projection_runtime.partitioned import Delivery, PartitionedProjector, aggregate_kind
from services.sharding.router import ShardedApplication


class ShardFeed:
    """Remembers how far it read each shard and the next offset of each partition; `feed` applies what is new."""

    def __init__(self, crm: ShardedApplication, projector: PartitionedProjector) -> None:
        self.crm, self.projector = crm, projector
        self.read_up_to = [0] * len(crm.apps)
        self.next_offset: dict[int, int] = defaultdict(int)

    def deliveries(self) -> list[Delivery]:
        """What the shards recorded since the last call, shard after shard, each in its log's order."""
        found = []
        for shard, app in enumerate(self.crm.apps):
            owned = sorted(p for p, s in self.crm.shard_map.items() if s == shard)
            notifications = app.recorder.select_notifications(self.read_up_to[shard] + 1, 10_000)
            for notification, event in zip(notifications, app.mapper.to_sealed_events(notifications), strict=True):
                home = owned if is_reference(aggregate_kind(event)) else [partition_of(event.originator_id)]
                found.extend(self._delivery(partition, event, notification.id) for partition in home)
                self.read_up_to[shard] = notification.id
        return found

    def _delivery(self, partition: int, event: Any, position: int) -> Delivery:
        offset = self.next_offset[partition]
        self.next_offset[partition] += 1
        return Delivery(partition, offset, event, position)

    def feed(self) -> int:
        """Apply everything new in one batch; the deliveries some read model applied."""
        return self.projector.apply(self.deliveries())
