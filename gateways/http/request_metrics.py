"""Counting the HTTP requests by method, route template and status (services.metrics's instruments).

The route is the template that matched (`/deals/{deal_id}`), never the raw path, so the number of series
stays the number of routes; a request answered before routing (401 before the body, 503 while the database
is down) or matching no route counts as `unmatched`. Outermost middleware: it sees every answer.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.metrics import Instruments

UNMATCHED = "unmatched"


class RequestMetrics:
    """ASGI middleware: one counter increment per answered request (≈ 1 µs; no I/O)."""

    def __init__(self, app: ASGIApp, instruments: Instruments) -> None:
        self.app, self.instruments = app, instruments

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._counted(scope, receive, send)
        else:
            await self.app(scope, receive, send)  # lifespan

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 500  # unless an answer starts: an exception that escapes every handler

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            self.instruments.count_request(scope["method"], getattr(route, "path", UNMATCHED), status)
