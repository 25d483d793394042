"""`X-Read-Model-Position` / `X-Log-Position` / `X-Read-Model-Lag` on the answers (see gateways.http.deps
for why headers), and their description in the OpenAPI document.

A read-model answer carries the freshness its dependency found; a successful change carries the log
position of this process's latest write (its own, or a later one: waiting for it is never too little) — over
shards, `partition:position` of the request's own write (services.sharding.written says why).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.application import CrmApplication
from services.sharding.written import Written, noting_writes

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_TEXT = {"type": "string"}
READ_HEADERS: dict[str, dict[str, Any]] = {
    "X-Read-Model-Position": {"schema": _TEXT, "description": (
        "One log: the last log position every read model behind the answer has applied (a number). Over shards: "
        "for each partition named in `wait_for_position`, the position they have all applied there "
        "(`17:1050,3:88`); absent when none was named.")},
    "X-Log-Position": {"schema": _TEXT, "description": (
        "One log: the log's last position as the answer was read; the answer lags it by X-Log-Position − "
        "X-Read-Model-Position events. Not sent over shards, which have no global position.")},
    "X-Read-Model-Lag": {"schema": {"type": "string", "pattern": "^[0-9]+$"}, "description": (
        "How stale the answer is, in events its read models have still to apply (0: caught up). One log: "
        "X-Log-Position − X-Read-Model-Position. Over shards, when the server knows the partitions' ends "
        "(CRM_KAFKA_BOOTSTRAP set: the topic's end offsets, read once a second in the background, never during "
        "the request): the most records any read model behind the answer has still to apply in any partition, a "
        "lower bound as of a reading at most ≈ 1 s old; absent when the ends are not known (no broker named, or "
        "no reading of the last 5 s).")},
}


class FreshnessHeaders:
    """ASGI middleware adding the position headers as the answer starts."""

    def __init__(self, app: ASGIApp, crm: CrmApplication) -> None:
        self.app, self.crm = app, crm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # the dict `request.state` writes to

        with noting_writes() as note:
            async def send_with_positions(message: Message) -> None:
                if message["type"] == "http.response.start":
                    self._add(MutableHeaders(scope=message), state, scope["method"], message["status"], note)
                await send(message)

            await self.app(scope, receive, send_with_positions)

    def _add(self, headers: MutableHeaders, state: dict[str, object], method: str, status: int,
             note: Written) -> None:
        found = state.get("freshness")
        if found is not None and "x-read-model-position" not in headers and "x-read-model-lag" not in headers:
            headers.update(found.headers())  # type: ignore[attr-defined]
        elif method in CHANGES and status < 300 and (position := note.position() or self.crm.last_write.position):
            headers["X-Log-Position"] = str(position)


def document_freshness(api: FastAPI) -> None:
    """Declare READ_HEADERS on the 200 answer of every read-model query (the operations that take
    `wait_for_position`) in `api`'s OpenAPI document, which FastAPI cannot infer from a middleware."""
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        first = api.openapi_schema is None
        schema = generate()  # cached by FastAPI after the first call
        if first:
            for operation in (op for methods in schema.get("paths", {}).values() for op in methods.values()):
                if any(p.get("name") == "wait_for_position" for p in operation.get("parameters", [])):
                    operation["responses"].setdefault("200", {}).setdefault("headers", {}).update(READ_HEADERS)
        return schema

    api.openapi = openapi  # type: ignore[method-assign]
