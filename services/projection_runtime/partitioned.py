"""STAND-IN for part *partproj*'s partitioned projector (COMMON.md's API), so that the Kafka consumer can be
built and tested before it lands; deleted when the consumer branch is merged with theirs.

Offsets per (read model, partition) live in `projection_offsets`; `apply` commits the rows and the new
offsets in one transaction, guarded by the old offsets (ProjectionRace otherwise). A reference event
(pipelines, vocabularies, rates, campaigns: every partition carries it) is applied once per read model:
passed by when its aggregate's version was already applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.partitions import PARTITIONS, is_reference
from projections.read_model import ReadModel, Rows
from projections.tables import Table
from services.projection_runtime.projector import ProjectionRace, Projector
from services.storage.read_model_store import ReadModelStore

OFFSETS = Table("projection_offsets", (("name", "TEXT"), ("partition", "INTEGER"), ("kafka_offset", "BIGINT")),
                ("name", "partition"))
REFERENCE_SEEN = Table("projection_reference_seen", (("name", "TEXT"), ("aggregate_id", "TEXT"),
                                                     ("version", "BIGINT")), ("name", "aggregate_id"))


@dataclass(frozen=True)
class Delivery:
    partition: int
    offset: int
    event: Any


class PartitionedProjector:
    def __init__(self, store: ReadModelStore, models: Sequence[ReadModel]) -> None:
        self.store, self.models = store, list(models)
        self._handlers = {m.name: m.handlers() for m in self.models}
        Projector.setup(self)  # type: ignore[arg-type]  # tables and schema fingerprints, as the log's projector
        with store.transaction() as cursor:
            for statement in (*OFFSETS.ddl(), *REFERENCE_SEEN.ddl()):
                cursor.execute(statement)
            cursor.executemany("INSERT INTO projection_offsets (name, partition, kafka_offset) VALUES (?, ?, -1) "
                               "ON CONFLICT (name, partition) DO NOTHING",
                               [(m.name, p) for m in self.models for p in range(PARTITIONS)])

    def offsets(self) -> dict[tuple[str, int], int]:
        with self.store.transaction() as cursor:
            return self.offsets_in(cursor)

    def offsets_in(self, cursor: Any) -> dict[tuple[str, int], int]:
        names = [m.name for m in self.models]
        cursor.execute("SELECT name, partition, kafka_offset FROM projection_offsets WHERE name IN "
                       f"({', '.join('?' * len(names))})", names)
        return {(name, partition): offset for name, partition, offset in cursor.fetchall()}

    def apply(self, deliveries: Sequence[Delivery]) -> int:
        applied = 0
        with self.store.transaction() as cursor:
            # Members applying different partitions share rows (tallies, reference data seen): the stand-in
            # applies one batch at a time over all members (part partproj's real one need not).
            if self.store.kind == "postgresql":
                cursor.execute("SELECT pg_advisory_xact_lock(738201)")
            old = self.offsets_in(cursor)
            rows = Rows(cursor, [t for m in self.models for t in (*m.tables, REFERENCE_SEEN)])
            for model in self.models:
                applied += self._apply(model, [d for d in deliveries if d.offset > old[(model.name, d.partition)]],
                                       rows)
            rows.flush()
            for (name, partition), new in self._ends(deliveries, old).items():
                cursor.execute("UPDATE projection_offsets SET kafka_offset = ? WHERE name = ? AND partition = ? "
                               "AND kafka_offset = ?", (new, name, partition, old[(name, partition)]))
                if cursor.rowcount != 1:
                    raise ProjectionRace(f"read model {name} partition {partition} was advanced by another consumer")
        return applied

    def _apply(self, model: ReadModel, deliveries: list[Delivery], rows: Rows) -> int:
        handlers = self._handlers[model.name]
        events = [d.event for d in deliveries if type(d.event) in handlers and self._first_time(model, d.event, rows)]
        model.prefetch(events, rows)
        for event in events:
            handlers[type(event)](event, rows)
        if events:
            model.finish(rows)
        return len(events)

    @staticmethod
    def _first_time(model: ReadModel, event: Any, rows: Rows) -> bool:
        if not is_reference(type(event).__qualname__.split(".")[0]):
            return True
        seen = rows.get(REFERENCE_SEEN, model.name, str(event.originator_id))
        if seen and seen["version"] >= event.originator_version:
            return False
        rows.put(REFERENCE_SEEN, {"name": model.name, "aggregate_id": str(event.originator_id),
                                  "version": event.originator_version})
        return True

    def _ends(self, deliveries: Sequence[Delivery], old: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        ends: dict[tuple[str, int], int] = {}
        for d in deliveries:
            for model in self.models:
                key = (model.name, d.partition)
                if d.offset > max(ends.get(key, -1), old[key]):
                    ends[key] = d.offset
        return ends
