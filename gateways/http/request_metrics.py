"""Counting the HTTP requests by method, route template and status (services.metrics's instruments).

The route is the template that matched (`/deals/{deal_id}`), never a raw path with an id in it, so the number of
series stays the number of routes. FastAPI names the template only for its API routes; a page without parameters
(`/docs`, `/openapi.json`) is named by its path, which is then its template. A request answered before routing
(401 before the body, 503 while the database is down) or matching no route counts as `unmatched`. Outermost
middleware: it sees every answer.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.metrics import Instruments

UNMATCHED = "unmatched"


class RequestMetrics:
    """ASGI middleware: one counter increment per answered request (≈ 10 µs with the workers' shared files)."""

    def __init__(self, app: ASGIApp, instruments: Instruments) -> None:
        self.app, self.instruments = app, instruments
        self._fixed_paths: frozenset[str] | None = None

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
            self.instruments.count_request(scope["method"], self._route(scope, status), status)

    def _route(self, scope: Scope, status: int) -> str:
        if (route := scope.get("route")) is not None:
            return str(route.path)
        if self._fixed_paths is None:  # the app's routes are all there by the first request
            paths = (getattr(route, "path", "") for route in scope["app"].routes)
            self._fixed_paths = frozenset(path for path in paths if path and "{" not in path)
        return scope["path"] if status < 400 and scope["path"] in self._fixed_paths else UNMATCHED
