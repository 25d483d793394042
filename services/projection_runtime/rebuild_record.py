"""Which read models `crm projections rebuild` is rebuilding, so that another process can show its progress.

The rebuild runs in its own process (or several: `--jobs`); `crm serve`'s /metrics runs in others. They share
the read store, so the rebuild writes one row per read model when it starts (the log's size then) and marks it
finished at the end; the progress itself needs no writes, since a rebuild resets a model's position to 0 and
applies the log in order: its position is the number of events applied. A rebuild that dies leaves its row
unfinished; its progress still moves as a follower carries the position on.

An online rebuild (`online_rebuild.py`) builds elsewhere while the positions stay the current version's, so it
writes its own position into `projection_online_rebuilds` (one row per read model, a write per batch); the swap
deletes the row in the transaction that moves the position, so the progress reads on without a jump.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from projections.tables import Table
from services.storage.read_model_store import ReadModelStore

REBUILDS = Table("projection_rebuilds", (("name", "TEXT"), ("total", "BIGINT"), ("started_at", "TEXT"),
                                         ("finished_at", "TEXT")), ("name",))
ONLINE = Table("projection_online_rebuilds", (("name", "TEXT"), ("applied", "BIGINT")), ("name",))


@dataclass(frozen=True)
class Rebuild:
    """A read model's latest rebuild: events of the log when it started, events applied, still running?"""

    name: str
    total: int
    applied: int
    running: bool

    @property
    def progress(self) -> float:
        """Share of the log applied, 0 to 1 (a log that grew meanwhile does not take it past 1)."""
        return min(self.applied / self.total, 1.0) if self.total else 1.0


@contextmanager
def recorded_rebuild(store: ReadModelStore, names: Sequence[str], total: int) -> Iterator[None]:
    """Record that `names` are being rebuilt over a log of `total` events, until the block ends (even by an
    error: the rebuild is no longer running)."""
    started = datetime.now(timezone.utc).isoformat()
    with store.transaction() as cursor:
        for statement in (*REBUILDS.ddl(), *ONLINE.ddl()):
            cursor.execute(statement)
        cursor.upsert(REBUILDS, [(name, total, started, None) for name in names])
        # a killed online rebuild's last progress must not stand for this rebuild's
        cursor.execute(f"DELETE FROM {ONLINE.name} WHERE name IN ({', '.join('?' * len(names))})", list(names))
    try:
        yield
    finally:
        marks = ", ".join("?" * len(names))
        with store.transaction() as cursor:
            cursor.execute(f"UPDATE {REBUILDS.name} SET finished_at = ? WHERE name IN ({marks})",
                           (datetime.now(timezone.utc).isoformat(), *names))


def record_online_progress(store: ReadModelStore, names: Sequence[str], applied: int | None) -> None:
    """An online rebuild of `names` has applied the log up to `applied` in its own tables (None: forget it)."""
    with store.transaction() as cursor:
        cursor.execute(f"DELETE FROM {ONLINE.name} WHERE name IN ({', '.join('?' * len(names))})", list(names))
        if applied is not None:
            cursor.upsert(ONLINE, [(name, applied) for name in names])


def online_progress(store: ReadModelStore, names: Sequence[str]) -> dict[str, int]:
    """How far the online rebuild of each of `names` has got, for those that reported (only reads)."""
    if not _exists(store, ONLINE.name):
        return {}
    marks = ", ".join("?" * len(names))
    return dict(store.query(f"SELECT name, applied FROM {ONLINE.name} WHERE name IN ({marks})", list(names)))


def rebuilds(store: ReadModelStore) -> list[Rebuild]:
    """Every read model's latest rebuild (one query; the table must exist; the online one since the first
    rebuild of a version that has it)."""
    online = _exists(store, ONLINE.name)
    applied = "COALESCE(o.applied, p.position, 0)" if online else "COALESCE(p.position, 0)"
    join = f"LEFT JOIN {ONLINE.name} o ON o.name = r.name " if online else ""
    rows = store.query(f"SELECT r.name, r.total, {applied}, r.finished_at IS NULL FROM {REBUILDS.name} r "
                       f"LEFT JOIN projection_positions p ON p.name = r.name {join}ORDER BY r.name")
    return [Rebuild(name, total, applied, bool(running)) for name, total, applied, running in rows]


def _exists(store: ReadModelStore, table: str) -> bool:
    if store.kind == "postgresql":
        return bool(store.query("SELECT to_regclass(?) IS NOT NULL", (table,))[0][0])
    return bool(store.query("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))[0][0])
