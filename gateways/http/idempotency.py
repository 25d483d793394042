"""Idempotency keys: a retried command gets the first answer back instead of running twice.

Keys live in a table of the log's own database, per principal. A request claims its key first
(INSERT … ON CONFLICT DO NOTHING); only the claimant runs the command, then stores its response.
A claim whose owner died (no response after `lease_seconds`) may be taken over by a retry.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson

from gateways.http.errors import ApiError
from projections.tables import Table
from services.readstore import ReadStore

KEYS = Table(
    "http_idempotency_keys",
    (("principal", "TEXT"), ("idem_key", "TEXT"), ("fingerprint", "TEXT"), ("claimed_at", "BIGINT"),
     ("status", "INTEGER"), ("response", "TEXT")),
    ("principal", "idem_key"),
)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    headers: dict[str, str]


def fingerprint(method: str, path: str, body: dict[str, Any], expected_version: int | None) -> str:
    """What identifies "the same request": method, path, the validated body and the expected version."""
    canonical = orjson.dumps({"method": method, "path": path, "body": body, "expected_version": expected_version},
                             option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


class IdempotencyStore:
    def __init__(self, store: ReadStore, lease_seconds: float = 300.0) -> None:
        self.store = store
        self.lease_micros = int(lease_seconds * 1_000_000)
        with store.transaction() as cursor:
            for statement in KEYS.ddl():
                cursor.execute(statement)

    def claim(self, principal: str, key: str, fingerprint: str) -> StoredResponse | None:
        """None when this request now owns the key; the stored response when it was answered before.

        Raises 422 when the key was used for a different request, 409 while its first request still runs.
        """
        now = _now_micros()
        with self.store.transaction() as cursor:
            cursor.execute("INSERT INTO http_idempotency_keys (principal, idem_key, fingerprint, claimed_at) "
                           "VALUES (?, ?, ?, ?) ON CONFLICT (principal, idem_key) DO NOTHING",
                           (principal, key, fingerprint, now))
            if cursor.rowcount == 1:
                return None
            cursor.execute("SELECT fingerprint, claimed_at, status, response FROM http_idempotency_keys "
                           "WHERE principal = ? AND idem_key = ?", (principal, key))
            stored_fingerprint, claimed_at, status, response = cursor.fetchone()
            if stored_fingerprint != fingerprint:
                raise ApiError(422, "this Idempotency-Key was already used for a different request; "
                                    "use a new key for a new request")
            if status is not None:
                return _decode(status, response)
            if now - claimed_at < self.lease_micros:
                raise ApiError(409, "a request with this Idempotency-Key is still in progress; retry later")
            cursor.execute("UPDATE http_idempotency_keys SET claimed_at = ? "
                           "WHERE principal = ? AND idem_key = ? AND claimed_at = ? AND status IS NULL",
                           (now, principal, key, claimed_at))
            if cursor.rowcount != 1:
                raise ApiError(409, "a request with this Idempotency-Key is still in progress; retry later")
            return None

    def complete(self, principal: str, key: str, response: StoredResponse) -> None:
        """Store the answer of the request that owns the key."""
        encoded = orjson.dumps({"body": response.body.decode("utf-8"), "headers": response.headers}).decode()
        with self.store.transaction() as cursor:
            cursor.execute("UPDATE http_idempotency_keys SET status = ?, response = ? "
                           "WHERE principal = ? AND idem_key = ?", (response.status, encoded, principal, key))

    def release(self, principal: str, key: str) -> None:
        """Give the key back unanswered (the command failed in a way worth retrying)."""
        with self.store.transaction() as cursor:
            cursor.execute("DELETE FROM http_idempotency_keys WHERE principal = ? AND idem_key = ? "
                           "AND status IS NULL", (principal, key))


def _decode(status: int, response: str) -> StoredResponse:
    data = orjson.loads(response)
    return StoredResponse(int(status), data["body"].encode("utf-8"), data["headers"])


def _now_micros() -> int:
    return time.time_ns() // 1000
