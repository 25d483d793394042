"""`X-Read-Model-Position` / `X-Log-Position` on the answers (see gateways.http.deps for why headers).

A read-model answer carries the freshness its dependency found; a successful change carries the log
position of this process's latest write (its own, or a later one: waiting for it is never too little) — over
shards, `partition:position` of the request's own write (services.sharding.written says why).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.application import CrmApplication
from services.sharding.written import Written, noting_writes

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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
