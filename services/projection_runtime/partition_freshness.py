"""Read-your-writes over shards: a command answers a *partition position*, a query waits for it (bounded).

One log has one position, and a query can wait until its read models applied it (`freshness`). Over shards
there is no global position, and the Kafka offset of a command's event is not known when the command answers
(the shard's relay publishes it later). What is known: the record's home partition and the event's
notification id in its shard's log. That id is monotonic within the partition — a partition lives on one
shard, and the shard's relay publishes its log in order, stamping each message with it (`ce_sequence`) — so
"partition p applied up to position n" is a sound thing to wait for. The partitioned projector keeps, per
(read model, partition), the position of the last delivery it applied (`projection_offsets.position`, in the
same transaction as the rows).

A reference change (a pipeline, a campaign) is written to the default shard first and reaches every
partition; waiting for one partition the default shard owns is enough, since a read model applies a
reference event the first time any partition brings it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from domain.partitions import PARTITIONS
from services.projection_runtime.freshness import LONGEST_WAIT, POLL, ReadModelNotBuilt
from services.projection_runtime.partitioned import PartitionFailure, partition_lag, read_partition_failures
from services.projection_runtime.projector import ReadModelStopped, read_failures
from services.storage.read_model_store import ReadModelStore

LAST_POSITION = 2**63 - 1  # a position is a BIGINT notification id
MOST_ASKED = PARTITIONS  # a client waits for at most one position per partition
_ITEM = re.compile(r"(\d{1,4}):(\d{1,19})")


@dataclass(frozen=True, order=True)
class PartitionPosition:
    """Event `position` (its shard's notification id) in home partition `partition`; written `p:n`."""

    partition: int
    position: int

    def __str__(self) -> str:
        return f"{self.partition}:{self.position}"


class BadPartitionPosition(ValueError):
    """A `wait_for_position` that is not a list of `partition:position`."""


def parse_positions(text: str) -> list[PartitionPosition]:
    """`"3:17"` or `"3:17,41:5"` → positions, one per partition (the highest asked); BadPartitionPosition
    with a sentence otherwise."""
    items = [item.strip() for item in text.split(",")]
    if len(items) > MOST_ASKED:
        raise BadPartitionPosition(f"wait_for_position names {len(items)} positions; at most {MOST_ASKED} "
                                   "(one per partition)")
    wanted: dict[int, int] = {}
    for item in items:
        match = _ITEM.fullmatch(item)
        if match is None:
            raise BadPartitionPosition(f"wait_for_position must be partition:position pairs separated by commas, "
                                       f"as the X-Log-Position of a write gives them (like 17:1042); got {item[:40]!r}")
        partition, position = int(match.group(1)), int(match.group(2))
        if partition >= PARTITIONS or not 1 <= position <= LAST_POSITION:
            raise BadPartitionPosition(f"{item}: the partition must be below {PARTITIONS} and the position "
                                       f"between 1 and {LAST_POSITION}")
        wanted[partition] = max(wanted.get(partition, 0), position)
    return [PartitionPosition(p, n) for p, n in sorted(wanted.items())]


def format_positions(positions: Sequence[PartitionPosition]) -> str:
    return ",".join(map(str, positions))


@dataclass(frozen=True)
class PartitionFreshness:
    """Where the read models behind an answer stand: for each partition asked, the position every one of them
    has applied (0: none yet); `lag`, the most events any of them has still to apply in any partition, when
    the partitions' ends are known."""

    applied: tuple[PartitionPosition, ...] = ()
    lag: int | None = None

    def headers(self) -> dict[str, str]:
        found = {"X-Read-Model-Position": format_positions(self.applied)} if self.applied else {}
        return found | ({} if self.lag is None else {"X-Read-Model-Lag": str(self.lag)})

    def reached(self, wanted: Sequence[PartitionPosition]) -> bool:
        applied = {p.partition: p.position for p in self.applied}
        return all(applied.get(w.partition, 0) >= w.position for w in wanted)


class NotYetAppliedInPartitions(RuntimeError):
    """The read models did not apply the partition positions asked for within the wait."""

    def __init__(self, wanted: Sequence[PartitionPosition], found: PartitionFreshness, waited: float) -> None:
        self.wanted, self.found = list(wanted), found
        super().__init__(f"the read models have applied {format_positions(found.applied)}, not yet "
                         f"{format_positions(wanted)} (partition:position; waited {waited:.1f} s); is "
                         "`crm projections consume` running, and the shard's `crm relay`? Try again shortly")


class BeyondShardHead(ValueError):
    """A position its partition's shard has not recorded: no write has returned it."""

    def __init__(self, wanted: PartitionPosition, head: int) -> None:
        self.wanted, self.head = wanted, head
        super().__init__(f"the log of partition {wanted.partition}'s shard ends at position {head}; there is no "
                         f"position {wanted.position} to wait for")


def read_partition_positions(store: ReadModelStore, names: Sequence[str], partitions: Sequence[int]
                             ) -> dict[tuple[str, int], int]:
    """(read model, partition) → position of the last delivery applied (absent: none, or none with a
    position); {} where no partitioned projector ever ran (no table: nothing applied)."""
    if not names or not partitions:
        return {}
    try:
        rows = store.query('SELECT name, "partition", position FROM projection_offsets WHERE name IN '
                           f"({', '.join('?' * len(names))}) AND \"partition\" IN ({', '.join('?' * len(partitions))})",
                           [*names, *partitions])
    except Exception:
        if _offsets_table_exists(store):
            raise  # the database's own error
        return {}
    return {(name, p): position for name, p, position in rows if position is not None}


def _offsets_table_exists(store: ReadModelStore) -> bool:
    if store.kind == "postgresql":
        return bool(store.query("SELECT to_regclass('projection_offsets') IS NOT NULL")[0][0])
    return bool(store.query("SELECT count(*) FROM sqlite_master WHERE name = 'projection_offsets'")[0][0])


def partition_freshness(store: ReadModelStore, names: Sequence[str], partitions: Sequence[int] = (),
                        heads: Mapping[int, int] | None = None) -> PartitionFreshness:
    """The freshness of an answer from `names` for `partitions`; `heads` (each partition's end offset, as
    Kafka's `end_offsets` gives them) adds the lag. Raises ReadModelStopped if one of them is stopped (its
    answers would be incomplete), ReadModelNotBuilt if one was never set up."""
    if not names:
        return PartitionFreshness()
    try:
        failures = read_failures(store, names)
    except Exception:
        raise ReadModelNotBuilt(names) from None  # no projector ever set the tables up
    if failures:
        raise ReadModelStopped(list(failures.values()))
    positions = read_partition_positions(store, names, partitions)
    applied = tuple(PartitionPosition(p, min(positions.get((name, p), 0) for name in names)) for p in partitions)
    lag = max(partition_lag(store, names, heads).values(), default=0) if heads else None
    return PartitionFreshness(applied, lag)


def wait_for_partitions(store: ReadModelStore, names: Sequence[str], wanted: Sequence[PartitionPosition],
                        head_of: Callable[[int], int] | None = None, heads: Mapping[int, int] | None = None,
                        longest: float | None = None, sleep: Callable[[float], None] = time.sleep
                        ) -> PartitionFreshness:
    """The freshness once `names` have applied every partition position `wanted` (a client's own writes);
    BeyondShardHead at once for a position beyond `head_of(partition)` (its shard's last position), else
    NotYetAppliedInPartitions after `longest` seconds (default LONGEST_WAIT)."""
    longest = LONGEST_WAIT if longest is None else longest
    partitions = [w.partition for w in wanted]
    started, first = time.monotonic(), True
    while True:
        found = partition_freshness(store, names, partitions, heads)
        if found.reached(wanted):
            return found
        if first and head_of is not None:
            _require_recorded(found, wanted, head_of)
        first = False
        waited = time.monotonic() - started
        if waited >= longest:
            raise NotYetAppliedInPartitions(wanted, found, waited)
        sleep(POLL)


def _require_recorded(found: PartitionFreshness, wanted: Sequence[PartitionPosition],
                      head_of: Callable[[int], int]) -> None:
    """Only the positions not yet applied are checked, on the first look only (a head only grows): one max()
    of a shard's log each."""
    for want in wanted:
        if not found.reached([want]) and want.position > (head := head_of(want.partition)):
            raise BeyondShardHead(want, head)


@dataclass(frozen=True)
class PartitionState:
    """One partition as the read models fed by partitions stand in it (`crm projections status`)."""

    partition: int
    offsets: dict[str, int]  # read model → last applied offset
    positions: dict[str, int]  # read model → position of that delivery (absent: not known)
    stops: tuple[PartitionFailure, ...] = ()


def partition_states(store: ReadModelStore, names: Sequence[str]) -> list[PartitionState]:
    """Every partition some read model of `names` applied or stopped in (none: no partitioned projector ran)."""
    if not names or not _offsets_table_exists(store):
        return []
    marks = ", ".join("?" * len(names))
    rows = store.query(f'SELECT name, "partition", "offset", position FROM projection_offsets WHERE name IN ({marks})',
                       list(names))
    stops = read_partition_failures(store, names)
    partitions = sorted({row[1] for row in rows} | {p for _, p in stops})
    return [PartitionState(p, {n: o for n, q, o, _ in rows if q == p},
                           {n: pos for n, q, _, pos in rows if q == p and pos is not None},
                           tuple(stop for (_, q), stop in sorted(stops.items()) if q == p)) for p in partitions]
