"""The read models fed partition by partition (`domain.partitions`), in any interleaving, by several workers.

The log follower (`projector.Projector`) reads one global order. A consumer of a partitioned log (Kafka's
`crm.events`, one partition per home partition) sees each partition in order but the partitions in any
interleaving, and several consumers apply batches of different partitions at once. What the read models
need is only each customer's events together and in order (../shared/SCALE.md), which a home partition
keeps; this module supplies the rest:

- **Exactly once per (read model, partition).** `projection_offsets` holds the last offset each read model
  applied of each partition. A batch (of one or several partitions) commits its rows and the new offsets
  in one transaction, guarded by the offsets it started from: another consumer that moved one first (a
  rebalance) makes it raise `ProjectionRace`, changing nothing. Deliveries at or below a read model's
  offset are passed by (a redelivery after a crash).
- **Rows several workers share** (a pipeline's stages, a reference row, any total a read model keeps over
  customers) never lose an update: on PostgreSQL each batch runs REPEATABLE READ, where the later of two
  batches changing one row fails (first updater wins) and is done again from fresh rows and offsets —
  counted in `retries`; a batch that applies a reference event first runs alone (`_isolate`), so that an
  exchange rate or a pipeline change meets every partition's rows as they are. The hottest shared rows,
  the funnel's day and month tallies, are kept per home partition and summed at query time
  (`projections.funnel.tally`), so that workers of different partitions do not meet on every event.
  Rows are never carried from one batch to the next (another worker may have changed them since).
- **Reference events** (pipelines, vocabularies, exchange rates, campaigns: `is_reference`) arrive once in
  every partition. The first arrival is applied; `projection_references` keeps the last version of each
  reference aggregate each read model applied, and any arrival at or below it is passed by, in the same
  transaction as the rows.
- **Stops.** A read model that cannot apply an event stops *for that partition*, as the follower's does for
  the log: the failure (partition, offset, aggregate, type, reason) is recorded in
  `projection_partition_failures`, the batch is done again without it, and that (read model, partition)
  applies the events before it and then waits. Its other partitions go on (so that after a repair it lags
  by one partition, not by all), but the read model is also recorded in `projection_failures`, so its
  queries raise `ReadModelStopped` as a stopped follower's do: its totals would be quietly wrong.
  `resume(name, partition, skip)` retries the event or passes it by for good (`projection_partition_skips`).
- **One feeder.** A read model the log follower has fed (its position past 0) is refused (`FeederConflict`),
  at set-up and in every batch, with its position's row locked (see `projector.py`'s docstring).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from eventsourcing.utils import get_topic

from domain.partitions import is_reference
from projections.ports import Cursor
from projections.read_model import ReadModel, Rows
from services.projection_runtime.projector import (PARTITION_DDL, Failure, FeederConflict, ProjectionRace, _now,
                                                   _Unappliable, _Undecodable, handle_events, read_positions,
                                                   set_up_tables, transient_errors)
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from services.storage.schema_lock import advisory_lock

log = logging.getLogger(__name__)
DDL = PARTITION_DDL  # made by `set_up_tables` too, so that the follower can ask projection_offsets
_FAILURE_COLUMNS = 'name, "partition", "offset", aggregate_id, event_type, reason'
# A conflicting batch is done again at once, then after growing random pauses (two workers that met on a row
# should not meet again): 30 attempts ≈ 3 s of pauses at most, far more than 3 workers ever needed (see notes).
ATTEMPTS = 30
PAUSE = 0.002  # seconds, doubled per attempt up to 0.2 s


@dataclass(frozen=True)
class Delivery:
    """One event of one partition, at its offset in that partition (Kafka's offset, or any increasing number)."""

    partition: int
    offset: int
    event: Any  # a domain event (personal data sealed, as the follower decodes it)
    position: int | None = None  # its notification id in its shard's log (CloudEvents `ce_sequence`), if known


@dataclass(frozen=True)
class PartitionFailure:
    """An event a read model could not apply, in the partition it stopped."""

    partition: int
    failure: Failure  # `failure.position` is the offset in the partition

    def message(self) -> str:
        return self.failure.message().replace("log position", f"partition {self.partition} offset", 1)


def aggregate_kind(event: Any) -> str:
    """The aggregate class name of an event ("Campaign" for `Campaign.Planned`), also of an undecodable one."""
    name = event.topic.rsplit(":")[-1] if isinstance(event, _Undecodable) else type(event).__qualname__
    return name.split(".")[0]


def read_offsets(store: ReadModelStore, names: Sequence[str]) -> dict[tuple[str, int], int]:
    """(read model, partition) → last applied offset, for the partitions any of `names` applied."""
    rows = store.query('SELECT name, "partition", "offset" FROM projection_offsets WHERE name IN '
                       f"({', '.join('?' * len(names))})", list(names))
    return {(name, partition): offset for name, partition, offset in rows}


def read_partition_failures(store: ReadModelStore, names: Sequence[str]) -> dict[tuple[str, int], PartitionFailure]:
    """(read model, partition) → the event it is stopped at there (only reads: `crm projections status`)."""
    rows = store.query(f"SELECT {_FAILURE_COLUMNS}, failed_at FROM projection_partition_failures "
                       f"WHERE name IN ({', '.join('?' * len(names))})", list(names))
    return {(row[0], row[1]): PartitionFailure(row[1], Failure(row[0], *row[2:])) for row in rows}


def partition_lag(store: ReadModelStore, names: Sequence[str], heads: Mapping[int, int]) -> dict[tuple[str, int], int]:
    """Events each read model has still to apply in each partition: `heads` are the partitions' end offsets
    (the offset the next event will get, as Kafka's `end_offsets` gives them). For the metrics endpoint."""
    offsets = read_offsets(store, names)
    return {(name, p): max(head - 1 - offsets.get((name, p), -1), 0) for name in names for p, head in heads.items()}


class PartitionedProjector:
    """Applies batches of deliveries of any partitions to a set of read models, exactly once each."""

    def __init__(self, store: ReadModelStore, models: Sequence[ReadModel]) -> None:
        self.store = store
        self.models = list(models)
        self.names = [m.name for m in self.models]
        self._handlers = {m.name: m.handlers() for m in self.models}
        self._topics = {name: {get_topic(cls) for cls in handlers} for name, handlers in self._handlers.items()}
        self._tables = [t for m in self.models for t in m.tables]
        self.retries = 0  # batches done again after a conflict with another worker (PostgreSQL)
        self.alone = 0  # batches run alone, since they applied a reference event first (PostgreSQL)
        self.setup()

    def setup(self) -> None:
        """The follower's tables and schema checks, plus this module's; a read model whose tables were
        dropped (its schema changed) starts again at every partition's beginning."""
        with self._schema_lock():  # consumers starting together create the tables in turn
            self._set_up()

    def _schema_lock(self) -> AbstractContextManager[None]:
        if self.store.kind != "postgresql":
            return nullcontext()
        return advisory_lock(database_from_url(self.store._url))  # noqa: SLF001 - the store's own database

    def _set_up(self) -> None:
        dropped = set_up_tables(self.store, self.models)
        with self.store.transaction() as cursor:
            for statement in DDL:
                cursor.execute(statement)
            _add_position_column(cursor, self.store.kind)
            for name in dropped:
                for table in ("projection_offsets", "projection_partition_failures", "projection_references"):
                    cursor.execute(f"DELETE FROM {table} WHERE name = ?", (name,))
        _refuse_followed(read_positions(self.store, self.names))

    def offsets(self) -> dict[tuple[str, int], int]:
        """(read model name, partition) → last applied offset; −1 (or absent) if none."""
        return read_offsets(self.store, self.names)

    def failures(self) -> dict[tuple[str, int], PartitionFailure]:
        """(read model, partition) → the event it is stopped at there."""
        return read_partition_failures(self.store, self.names)

    def lag(self, heads: Mapping[int, int]) -> dict[tuple[str, int], int]:
        return partition_lag(self.store, self.names, heads)

    def apply(self, deliveries: Sequence[Delivery]) -> int:
        """Apply each delivery to every read model whose offset for its partition is below it; commit rows and
        offsets at once. Returns how many deliveries some read model applied (0: all seen before). Raises
        ProjectionRace, changing nothing, if another consumer moved an offset of these partitions since the
        call began."""
        deliveries = list(deliveries)
        if not deliveries:
            return 0
        _require_partition_order(deliveries)
        partitions = {d.partition for d in deliveries}
        expected = {key: offset for key, offset in self.offsets().items() if key[1] in partitions}
        attempt = 0
        while True:
            try:
                return self._apply(deliveries, expected)
            except _Unappliable as unappliable:
                self._stop(deliveries[unappliable.failure.position], unappliable.failure)
            except (*transient_errors(), _FirstArrivalMissed) as error:
                attempt += 1
                if not _conflict(error) or attempt >= ATTEMPTS:
                    raise
                self.retries += 1
                time.sleep(random.uniform(0, min(PAUSE * 2 ** attempt, 0.2)))  # noqa: S311 - jitter, not secrets

    def _apply(self, deliveries: list[Delivery], expected: dict[tuple[str, int], int]) -> int:
        skips, stops = self._skips(), self.failures()
        references = self._reference_versions(self.store.query, deliveries)
        alone = any(self._may_be_new(d.event, references) for d in deliveries)
        with self.store.transaction() as cursor:
            if self.store.kind == "postgresql":
                _isolate(cursor, alone)
                self.alone += alone
            self._require_no_follower(cursor)
            offsets = self._offsets_in(cursor, {d.partition for d in deliveries})
            if offsets != expected:
                raise ProjectionRace("another consumer moved the offsets of partitions "
                                     f"{sorted({p for _, p in set(offsets.items()) ^ set(expected.items())})}")
            seen = self._reference_versions(_reader(cursor), deliveries)
            rows, moved, applied = Rows(cursor, self._tables), {}, set()
            for model in self.models:
                mine = self._new_for(model.name, deliveries, offsets, stops, moved)
                mine = [(i, e) for i, e in mine if (model.name, deliveries[i].partition, deliveries[i].offset)
                        not in skips and self._first_arrival(model.name, e, seen)]
                applied.update(i for i, _ in mine)
                handle_events(model, self._handlers[model.name], self._topics[model.name], lambda e: True, mine,
                              rows)
            rows.flush()
            self._write_reference_versions(cursor, seen, alone)
            self._advance(cursor, offsets, moved, {(d.partition, d.offset): d.position for d in deliveries})
        return len(applied)

    def _require_no_follower(self, cursor: Cursor) -> None:
        """FeederConflict if the log follower fed one of these read models. On PostgreSQL the position rows are
        locked (FOR SHARE; batches of other partitions share the lock): a follower's batch moving one either
        committed before (this batch then fails with 40001 and is done again, and refuses) or waits for this
        one to commit, and then sees its offsets and refuses (`projector.require_no_partition_feeder`)."""
        lock = " FOR SHARE" if self.store.kind == "postgresql" else ""  # SQLite: one writer at a time anyway
        cursor.execute(f"SELECT name, position FROM projection_positions WHERE name IN "
                       f"({', '.join('?' * len(self.names))}){lock}", self.names)
        _refuse_followed(dict(cursor.fetchall()))

    def _may_be_new(self, event: Any, references: dict[tuple[str, str], tuple[int, bool]]) -> bool:
        """Whether some read model may apply this reference event first (as the versions read before the
        batch say: they only grow, so a "no" stays true)."""
        return is_reference(aggregate_kind(event)) and any(
            event.originator_version > references.get((name, str(event.originator_id)), (0, False))[0]
            for name in self.names)

    @staticmethod
    def _new_for(name: str, deliveries: list[Delivery], offsets: dict[tuple[str, int], int],
                 stops: dict[tuple[str, int], PartitionFailure], moved: dict[tuple[str, int], int]
                 ) -> list[tuple[int, Any]]:
        """(index, event) of the deliveries read model `name` has not applied and may apply (a stopped
        partition: those before the event it stopped at); `moved` gets the offsets it will have."""
        mine = []
        for i, delivery in enumerate(deliveries):
            key = (name, delivery.partition)
            stop = stops.get(key)
            if delivery.offset <= moved.get(key, offsets.get(key, -1)) or (stop and delivery.offset >=
                                                                            stop.failure.position):
                continue
            moved[key] = delivery.offset
            mine.append((i, delivery.event))
        return mine

    @staticmethod
    def _first_arrival(name: str, event: Any, seen: dict[tuple[str, str], tuple[int, bool]]) -> bool:
        """Whether this event is to be applied: any but a reference event another partition brought first."""
        if not is_reference(aggregate_kind(event)):
            return True
        key = (name, str(event.originator_id))
        version, _ = seen.get(key, (0, False))
        if event.originator_version <= version:
            return False
        seen[key] = (event.originator_version, True)
        return True

    def _offsets_in(self, cursor: Cursor, partitions: set[int]) -> dict[tuple[str, int], int]:
        cursor.execute('SELECT name, "partition", "offset" FROM projection_offsets WHERE "partition" IN '
                       f"({', '.join('?' * len(partitions))}) AND name IN ({', '.join('?' * len(self.names))})",
                       [*sorted(partitions), *self.names])
        return {(name, p): offset for name, p, offset in cursor.fetchall()}

    @staticmethod
    def _reference_versions(query: Callable[[str, list[Any]], list[Any]], deliveries: list[Delivery]
                            ) -> dict[tuple[str, str], tuple[int, bool]]:
        """(read model, reference aggregate) → (last version applied, changed by this batch), for the batch's."""
        ids = sorted({str(d.event.originator_id) for d in deliveries if is_reference(aggregate_kind(d.event))})
        if not ids:
            return {}
        found = query("SELECT name, aggregate_id, version FROM projection_references WHERE aggregate_id IN "
                      f"({', '.join('?' * len(ids))})", ids)
        return {(name, aggregate): (version, False) for name, aggregate, version in found}

    @staticmethod
    def _write_reference_versions(cursor: Cursor, seen: dict[tuple[str, str], tuple[int, bool]], alone: bool) -> None:
        changed = [(name, aggregate, version) for (name, aggregate), (version, new) in seen.items() if new]
        if not changed:
            return
        if not alone:
            raise _FirstArrivalMissed("a reference event came new to a batch not run alone")
        cursor.executemany("INSERT INTO projection_references (name, aggregate_id, version) VALUES (?, ?, ?) "
                           "ON CONFLICT (name, aggregate_id) DO UPDATE SET version = excluded.version", changed)

    @staticmethod
    def _advance(cursor: Cursor, offsets: dict[tuple[str, int], int], moved: dict[tuple[str, int], int],
                 positions: dict[tuple[int, int], int | None]) -> None:
        """Move each offset (and the log position that came with it: read-your-writes waits for it) from where
        this batch found it; ProjectionRace if someone else moved it first."""
        for (name, partition), new in moved.items():
            position = positions[(partition, new)]
            if (name, partition) in offsets:
                cursor.execute('UPDATE projection_offsets SET "offset" = ?, position = COALESCE(?, position) '
                               'WHERE name = ? AND "partition" = ? AND "offset" = ?',
                               (new, position, name, partition, offsets[(name, partition)]))
            else:
                cursor.execute('INSERT INTO projection_offsets (name, "partition", "offset", position) '
                               'VALUES (?, ?, ?, ?) ON CONFLICT (name, "partition") DO NOTHING',
                               (name, partition, new, position))
            if cursor.rowcount != 1:
                raise ProjectionRace(f"read model {name}, partition {partition} was advanced by another consumer")

    def _skips(self) -> set[tuple[str, int, int]]:
        return {tuple(row) for row in self.store.query(  # type: ignore[misc]
            'SELECT name, "partition", "offset" FROM projection_partition_skips WHERE name IN '
            f"({', '.join('?' * len(self.names))})", self.names)}

    def _stop(self, delivery: Delivery, failure: Failure) -> None:
        """Stop `failure.name` in the delivery's partition (and refuse its queries, see the module's docstring)."""
        stopped = PartitionFailure(delivery.partition, Failure(failure.name, delivery.offset, failure.aggregate_id,
                                                               failure.event_type, failure.reason, failure.at))
        log.error("%s; its other partitions and the other read models go on", stopped.message(),
                  extra={"component": "partitioned_projector", "action": "stop_read_model", "read_model": failure.name,
                         "partition": delivery.partition, "offset": delivery.offset, "event_type": failure.event_type,
                         "aggregate_id": failure.aggregate_id})
        values = (failure.name, delivery.partition, delivery.offset, failure.aggregate_id, failure.event_type,
                  failure.reason, failure.at)
        with self.store.transaction() as cursor:
            cursor.execute(f"INSERT INTO projection_partition_failures ({_FAILURE_COLUMNS}, failed_at) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name, \"partition\") DO NOTHING", values)
            cursor.execute("INSERT INTO projection_failures (name, position, aggregate_id, event_type, reason, "
                           "failed_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                           (failure.name, delivery.offset, failure.aggregate_id, failure.event_type,
                            f"partition {delivery.partition}: {failure.reason}", failure.at))

    def resume(self, name: str, partition: int, skip: bool = False) -> PartitionFailure | None:
        """Let read model `name` go on in `partition`: retry the event it stopped at, or with `skip` pass it
        by for good. Its queries answer again once no partition of it is stopped. Returns what was cleared."""
        stopped = self.failures().get((name, partition))
        if stopped is None:
            return None
        failure = stopped.failure
        with self.store.transaction() as cursor:
            if skip:
                cursor.execute(f"INSERT INTO projection_partition_skips ({_FAILURE_COLUMNS}, skipped_at) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                               (name, partition, failure.position, failure.aggregate_id, failure.event_type,
                                failure.reason, _now()))
            cursor.execute('DELETE FROM projection_partition_failures WHERE name = ? AND "partition" = ?',
                           (name, partition))
            cursor.execute("DELETE FROM projection_failures WHERE name = ? AND NOT EXISTS "
                           "(SELECT 1 FROM projection_partition_failures WHERE name = ?)", (name, name))
        log.warning("read model %s resumed in partition %d at offset %d (%s)", name, partition, failure.position,
                    "event passed by" if skip else "event retried")
        return stopped


def _refuse_followed(positions: Mapping[str, int]) -> None:
    """FeederConflict naming the read models the log follower has fed, and what to do."""
    followed = sorted(name for name, position in positions.items() if position > 0)
    if followed:
        raise FeederConflict(
            f"read model(s) {', '.join(followed)} are fed by the log follower (`crm serve`'s background projector or "
            f"`crm projections follow`, log position {max(positions[n] for n in followed):,}), so they cannot be fed "
            "per partition too: every event would count twice. Consume only the others (`crm projections consume "
            "NAME...`), or stop the follower (`crm serve --no-projector`, CRM_SERVE_PROJECTOR=0) and run "
            f"`crm projections reset {' '.join(followed)}` before consuming them")


class _FirstArrivalMissed(RuntimeError):
    """A batch not run alone met a reference event first (cannot happen: versions only grow); done again."""

    sqlstate = "40001"


def _require_partition_order(deliveries: list[Delivery]) -> None:
    """Each partition's deliveries must come in increasing offsets (gaps are fine: Kafka's transaction
    markers take offsets); anything else is a consumer's bug, which would silently pass events by."""
    last: dict[int, int] = {}
    for delivery in deliveries:
        if delivery.offset <= last.get(delivery.partition, -1):
            raise ValueError(f"deliveries of partition {delivery.partition} out of order: offset {delivery.offset} "
                             f"after {last[delivery.partition]}")
        last[delivery.partition] = delivery.offset


def _add_position_column(cursor: Cursor, kind: str) -> None:
    """Offsets tables made before positions were kept get the column (ALTER only when it is missing); their
    rows have none until their partition's next delivery."""
    if kind == "postgresql":
        cursor.execute("SELECT 1 FROM information_schema.columns WHERE table_name = 'projection_offsets' "
                       "AND column_name = 'position' AND table_schema = current_schema()")
    else:
        cursor.execute("SELECT 1 FROM pragma_table_info('projection_offsets') WHERE name = 'position'")
    if not cursor.fetchall():
        cursor.execute("ALTER TABLE projection_offsets ADD COLUMN position BIGINT")


def _conflict(error: Exception) -> bool:
    """Whether the batch met another worker's (serialization failure, deadlock): doing it again will do."""
    return getattr(error, "sqlstate", None) in ("40001", "40P01")


def _isolate(cursor: Cursor, alone: bool) -> None:
    """REPEATABLE READ: a row two workers change at once fails the later one's batch (first updater wins),
    so no update is lost; the batch is done again from fresh rows. A batch that applies a reference event
    first runs alone: its table lock waits for the batches running and holds off new ones, and is taken
    before the snapshot (LOCK is not a query), so it sees every row any partition has written — an exchange
    rate revalues every purchase already there, and none is being added meanwhile with the old rate.
    SERIALIZABLE would give both but, measured, also fails most concurrent batches for rows they never
    share (its predicate locks on small tables and index pages cover whole tables; see notes)."""
    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    cursor.execute(f"LOCK TABLE projection_references IN {'EXCLUSIVE' if alone else 'SHARE'} MODE")


def _reader(cursor: Cursor) -> Callable[[str, list[Any]], list[Any]]:
    def query(sql: str, params: list[Any]) -> list[Any]:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    return query
