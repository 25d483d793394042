"""Command receipts: the answer to a command sent with an idempotency key, kept in the log's own database.

A receipt is written in the SAME transaction as the command's events (see services/event_recorder.py), so
after any crash either both exist or neither does: a retry with the key finds the receipt and gets the
first answer back, or finds none and runs the command — which then happens exactly once, because a
second receipt for one key violates the table's primary key and rolls its events back with it.

A refusal that trying again cannot change (a broken rule, an unknown id) is kept too, on its own, with
no events. Transient failures (the database away, a lost connection, a conflict) are never kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

TABLE = "crm_command_receipts"
COLUMNS = "principal, idem_key, fingerprint, status, answer"


@dataclass(frozen=True)
class Receipt:
    """Who sent which key for which request (`fingerprint`), and the answer they got."""

    principal: str
    key: str
    fingerprint: str
    status: int
    body: bytes
    headers: dict[str, str]

    def row(self) -> tuple[str, str, str, int, str]:
        answer = orjson.dumps({"body": self.body.decode("utf-8"), "headers": self.headers}).decode()
        return self.principal, self.key, self.fingerprint, self.status, answer

    @classmethod
    def from_row(cls, row: tuple[str, str, str, int, str]) -> Receipt:
        principal, key, fingerprint, status, answer = row
        data = orjson.loads(answer)
        return cls(principal, key, fingerprint, int(status), data["body"].encode("utf-8"), data["headers"])


def create_table_sql(text: str = "TEXT") -> str:
    return (f"CREATE TABLE IF NOT EXISTS {TABLE} (principal {text} NOT NULL, idem_key {text} NOT NULL, "
            f"fingerprint {text} NOT NULL, status INTEGER NOT NULL, answer {text} NOT NULL, "
            "PRIMARY KEY (principal, idem_key))")


SELECT_SQL = f"SELECT {COLUMNS} FROM {TABLE} WHERE principal = ? AND idem_key = ?"
INSERT_SQL = f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (?, ?, ?, ?, ?)"
