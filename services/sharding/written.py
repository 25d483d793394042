"""The partition position one request's command wrote, for its answer (`X-Log-Position: partition:position`).

One log's answer can carry the process's latest position (`LastWrite`): waiting for a later position than
one's own is never too little there. Over shards it would be wrong: a later position of *another* partition
of the same shard may never be reached by this record's partition, so the wait would time out. So each
request notes its own: the gateway opens a note (`noting_writes`) around the request, the router says which
partition and shard the command went to (`routed`), and the shard's save says the highest notification id it
wrote there (`saved`). A context variable carries the note, since the command runs in a worker thread that
the gateway does not see (the thread runs in a copy of the request's context, which holds the same note);
outside a note (the CLI, imports) nothing is kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from services.projection_runtime.partition_freshness import PartitionPosition


@dataclass
class Written:
    """What one request wrote: the partition and shard its command was routed to, and per shard the highest
    notification id saved (a reference change also writes copies to the other shards: not its position)."""

    partition: int | None = None
    shard: int | None = None
    saved_on: dict[int, int] = field(default_factory=dict)

    def position(self) -> PartitionPosition | None:
        """The position to wait for, if the command was routed to a partition and saved something there."""
        if self.partition is None or self.shard not in self.saved_on:
            return None
        return PartitionPosition(self.partition, self.saved_on[self.shard])


_note: ContextVar[Written | None] = ContextVar("crm_written", default=None)


@contextmanager
def noting_writes() -> Iterator[Written]:
    note = Written()
    token = _note.set(note)
    try:
        yield note
    finally:
        _note.reset(token)


def routed(partition: int | None, shard: int) -> None:
    """The command goes to `shard`, to be read back in `partition` (None: no partition to wait for)."""
    note = _note.get()
    if note is not None:
        note.partition, note.shard = partition, shard


def saved(shard: int, position: int) -> None:
    note = _note.get()
    if note is not None and position:
        note.saved_on[shard] = max(note.saved_on.get(shard, 0), position)
