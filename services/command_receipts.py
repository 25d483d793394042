"""Command receipts: the answer to a command sent with an idempotency key, kept in the log's own database.

A receipt is written in the SAME transaction as the command's events (see services/storage/event_recorder.py), so
after any crash either both exist or neither does: a retry with the key finds the receipt and gets the
first answer back, or finds none and runs the command — which then happens exactly once, because a
second receipt for one key violates the table's primary key and rolls its events back with it.

A refusal that trying again cannot change (a broken rule, an unknown id) is kept too, on its own, with
no events. Transient failures (the database away, a lost connection, a conflict) are never kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import orjson

TABLE = "crm_command_receipts"
COLUMNS = "principal, idem_key, fingerprint, status, answer, recorded_at"


def now_micros() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class Receipt:
    """Who sent which key for which request (`fingerprint`), and the answer they got."""

    principal: str
    key: str
    fingerprint: str
    status: int
    body: bytes
    headers: dict[str, str]
    recorded_at: int = field(default_factory=now_micros, compare=False)  # µs since the epoch, for pruning

    def row(self) -> tuple[str, str, str, int, str, int]:
        answer = orjson.dumps({"body": self.body.decode("utf-8"), "headers": self.headers}).decode()
        return self.principal, self.key, self.fingerprint, self.status, answer, self.recorded_at

    @classmethod
    def from_row(cls, row: tuple[str, str, str, int, str, int]) -> Receipt:
        principal, key, fingerprint, status, answer, recorded_at = row
        data = orjson.loads(answer)
        return cls(principal, key, fingerprint, int(status), data["body"].encode("utf-8"), data["headers"],
                   int(recorded_at))


def create_table_sql() -> list[str]:
    return [f"CREATE TABLE IF NOT EXISTS {TABLE} (principal TEXT NOT NULL, idem_key TEXT NOT NULL, "
            "fingerprint TEXT NOT NULL, status INTEGER NOT NULL, answer TEXT NOT NULL, recorded_at BIGINT NOT NULL, "
            "PRIMARY KEY (principal, idem_key))",
            f"CREATE INDEX IF NOT EXISTS crm_receipts_by_time ON {TABLE} (recorded_at)"]


SELECT_SQL = f"SELECT {COLUMNS} FROM {TABLE} WHERE principal = ? AND idem_key = ?"
INSERT_SQL = f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
PRUNE_SQL = f"DELETE FROM {TABLE} WHERE recorded_at < ?"
