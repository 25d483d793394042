"""The log's recorders: the library's, plus command receipts saved atomically with the events.

Every recorder (PostgreSQL, SQLite, in memory) takes an optional `receipt` with the events and writes it in
the same transaction (services/command_receipts.py): an idempotency key's answer exists exactly when the
command's events do. PostgreSQL's, which saves in one round trip, is in services/storage/postgres_recorder.py:
psycopg and its pool cost ≈ 0.1 s to import, which an SQLite or in-memory log (every `crm` query on SQLite)
need not pay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from services import command_receipts
from services.command_receipts import Receipt


class RetriedSaveConflict(IntegrityError):
    """A save retried after its answer was lost (the connection dropped) met a key already taken: perhaps by
    its own first attempt, which may have committed. The caller must not decide the command again (it could
    then be written twice); it is reported as a conflict, as before."""


class ReceiptSQLiteRecorder(SQLiteApplicationRecorder):
    """The library's SQLite recorder, writing a command's receipt in its events' transaction."""

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *command_receipts.create_table_sql()]

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], *,
                       receipt: Receipt | None = None, **kwargs: Any) -> Sequence[int] | None:
        if receipt is not None:
            c.execute(command_receipts.INSERT_SQL, receipt.row())  # a second one for the key rolls all back
        return super()._insert_events(c, stored_events, **kwargs)

    def select_receipt(self, principal: str, key: str) -> Receipt | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(command_receipts.SELECT_SQL, (principal, key))
            row = c.fetchone()
        return None if row is None else Receipt.from_row(tuple(row))

    def insert_receipt(self, receipt: Receipt) -> bool:
        """Keep a receipt with no events (a refusal); False when the key already has one."""
        try:
            with self.datastore.transaction(commit=True) as c:
                c.execute(command_receipts.INSERT_SQL, receipt.row())
        except IntegrityError:  # the library's transaction turns sqlite3's into its own
            return False
        return True

    def prune_receipts(self, before_micros: int) -> int:
        with self.datastore.transaction(commit=True) as c:
            c.execute(command_receipts.PRUNE_SQL, (before_micros,))
            return c.sqlite_cursor.rowcount

    def held_ids(self, ids: Sequence[UUID]) -> set[UUID]:
        """Which of `ids` have events in the log, in one query (the library stores ids as hex)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT DISTINCT originator_id FROM {self.events_table_name} WHERE originator_id IN "
                      f"({', '.join('?' * len(ids))})", [i.hex for i in ids])
            return {UUID(row[0]) for row in c.fetchall()}

    def events_of(self, ids: Sequence[UUID]) -> dict[UUID, list[StoredEvent]]:
        """Every event of each of `ids`, in version order, in one query (the reminder process's batch: one
        query per item was most of its step at 50 due a second)."""
        found: dict[UUID, list[StoredEvent]] = {i: [] for i in ids}
        if not ids:
            return found
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT originator_id, originator_version, topic, state FROM {self.events_table_name} "
                      f"WHERE originator_id IN ({', '.join('?' * len(ids))}) ORDER BY originator_id, "
                      "originator_version", [i.hex for i in ids])
            for row in c.fetchall():
                originator = self.convert_originator_id(row[0])
                found[originator].append(StoredEvent(originator, row[1], row[2], row[3]))
        return found


class ReceiptPOPORecorder(POPOApplicationRecorder):
    """The in-memory recorder with receipts (for tests and experiments: `memory://`)."""

    def __init__(self) -> None:
        super().__init__()
        self._receipts: dict[tuple[str, str], Receipt] = {}

    def _insert_events(self, stored_events: Sequence[StoredEvent], *, receipt: Receipt | None = None,
                       **kwargs: Any) -> Sequence[int] | None:
        with self._database_lock:
            if receipt is not None and (receipt.principal, receipt.key) in self._receipts:
                raise IntegrityError(f"idempotency key {receipt.key!r} already has a receipt")
            ids = super()._insert_events(stored_events, **kwargs)
            if receipt is not None:
                self._receipts[receipt.principal, receipt.key] = receipt
            return ids

    def select_receipt(self, principal: str, key: str) -> Receipt | None:
        with self._database_lock:
            return self._receipts.get((principal, key))

    def insert_receipt(self, receipt: Receipt) -> bool:
        with self._database_lock:
            return self._receipts.setdefault((receipt.principal, receipt.key), receipt) is receipt

    def prune_receipts(self, before_micros: int) -> int:
        with self._database_lock:
            old = [key for key, receipt in self._receipts.items() if receipt.recorded_at < before_micros]
            for key in old:
                del self._receipts[key]
            return len(old)

    def held_ids(self, ids: Sequence[UUID]) -> set[UUID]:
        """Which of `ids` have events in the log."""
        with self._database_lock:
            return {i for i in ids if self._stored_events_index.get(str(i))}

    def events_of(self, ids: Sequence[UUID]) -> dict[UUID, list[StoredEvent]]:
        """Every event of each of `ids`, in version order."""
        return {i: list(self.select_events(i)) for i in ids}
