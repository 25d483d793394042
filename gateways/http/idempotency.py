"""Idempotency-Key: a retried command gets the first answer back and is never run twice.

The answer is a receipt (services/command_receipts.py) committed in the same transaction as the
command's events, so it survives any crash exactly when the events do: a worker killed between saving
and answering leaves a receipt the retry finds. Nothing is claimed before the command runs, so there is
no lease to wait out: two copies of one request may run at once, and the one that commits second fails on
the receipt's key, rolls back, and answers with the first one's receipt.

Kept as a key's final answer: successes, and refusals that trying again cannot change (400, 404, 422…).
Never kept: conflicts and the database being away (409, 503, a lost connection): a retry runs again.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from fastapi.responses import Response

from gateways.http.error_responses import ApiError
from services.command_receipts import Receipt

# Answers a retry may change: a conflict, a timeout, too many requests, the server or database away.
NOT_FINAL = frozenset({408, 409, 425, 429})


def is_final(status: int) -> bool:
    """Whether an answer is kept for the key: success or a refusal that trying again cannot change."""
    return status < 500 and status not in NOT_FINAL


def fingerprint(method: str, path: str, body: dict[str, Any], expected_version: int | None) -> str:
    """What identifies "the same request": method, path, the validated body and the expected version."""
    canonical = orjson.dumps({"method": method, "path": path, "body": body, "expected_version": expected_version},
                             option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def receipt_of(principal: str, key: str, request_print: str, response: Response) -> Receipt:
    kept_headers = {name: response.headers[name] for name in ("location", "etag") if name in response.headers}
    return Receipt(principal, key, request_print, response.status_code, bytes(response.body), kept_headers)


def replay(receipt: Receipt, request_print: str) -> Response:
    """The kept answer, marked as replayed; 422 when the key was used for another request."""
    if receipt.fingerprint != request_print:
        raise ApiError(422, "this Idempotency-Key was already used for a different request; "
                            "use a new key for a new request")
    return Response(receipt.body, receipt.status, headers={**receipt.headers, "Idempotent-Replayed": "true"},
                    media_type="application/json")
