"""Answer 503 at once while the database is down, instead of letting every request wait for it.

A cheap probe (`SELECT 1` on the read store's connection, which reconnects when broken) runs at most
every `interval` seconds; while it fails, requests other than health and the docs get 503 with
Retry-After, and nothing is attempted. The API recovers by itself once the probe succeeds again.
Between probes a request is let through without leaving the event loop.
"""

from __future__ import annotations

import threading
import time

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from gateways.http.error_responses import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS, error_response
from services.storage.read_model_store import ReadModelStore

# /metrics too: its gauges say themselves that the database is away (crm_metrics_source_up), and the counts
# of the 503s answered meanwhile must still reach Prometheus.
EXEMPT = ("/health", "/metrics", "/docs", "/redoc", "/openapi.json", "/dashboard")


class DatabaseProbe:
    def __init__(self, store: ReadModelStore, interval: float = 0.5) -> None:
        self.store = store
        self.interval = interval
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._up = True

    def up(self) -> bool:
        with self._lock:
            if time.monotonic() - self._checked_at >= self.interval:
                try:
                    self.store.query("SELECT 1")
                    self._up = True
                except DATABASE_UNAVAILABLE:
                    self._up = False
                self._checked_at = time.monotonic()
            return self._up

    def recently_up(self) -> bool:
        """The last probe, less than `interval` ago, found the database up (no waiting, no I/O)."""
        return self._up and time.monotonic() - self._checked_at < self.interval


class DatabaseGuard:
    """ASGI middleware: 503 for every guarded request while the probe says the database is down."""

    def __init__(self, app: ASGIApp, probe: DatabaseProbe) -> None:
        self.app = app
        self.probe = probe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        guarded = scope["type"] == "http" and not scope["path"].startswith(EXEMPT)
        if guarded and not self.probe.recently_up() and not await run_in_threadpool(self.probe.up):
            response = error_response(503, "the database is unavailable; nothing was written, try again shortly",
                                      headers={"Retry-After": RETRY_AFTER_SECONDS})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
