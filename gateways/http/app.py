"""`create_app`: the HTTP API over one event log (and its read models, in the same database)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from domain.base import Meta
from gateways.http.auth import BearerBeforeBody
from gateways.http.availability import DatabaseGuard, DatabaseProbe
from gateways.http.errors import install_error_handlers
from gateways.http.limits import BodyLimit
from gateways.http.responses import OrjsonResponse
from gateways.http.routes import ROUTERS
from gateways.http.tokens import TokenRegistry
from gateways.web.dashboard import router as dashboard
from services.application import CrmApplication
from services.storage.read_model_store import ReadModelStore
from services.storage.schema_lock import advisory_lock
from services.settings import Database, database_from_environment

MAX_BODY_BYTES = 64 * 1024
DESCRIPTION = """Commands on the CRM's event log and queries on its aggregates and read models.

Every route but `GET /health` needs `Authorization: Bearer <token>`. Commands accept `occurred_at`
(business time), `X-Correlation-Id`, `Idempotency-Key` (a retry returns the first answer) and, on
versioned changes, `If-Match: "<version>"` (stale → 409). Errors are `{"error": message, "detail": …}`.
"""
STARTUP_LOCK = 0x43524D5F53525645  # a PostgreSQL advisory lock key ("CRM_SRVE"): one worker starts at a time


def create_app(database: Database, tokens: TokenRegistry) -> FastAPI:
    """The API on `database`: opens the log and a read store now, closes them at shutdown."""
    crm = CrmApplication(database)
    crm.ensure_default_pipelines(Meta(actor="system"))
    store = ReadModelStore(database)

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()
        crm.close()

    api = FastAPI(title="Event-sourced CRM", version="1", description=DESCRIPTION, lifespan=lifespan,
                  default_response_class=OrjsonResponse)
    api.state.crm, api.state.store, api.state.tokens = crm, store, tokens
    api.state.projectors = {}
    api.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    api.add_middleware(DatabaseGuard, probe=DatabaseProbe(store))
    api.add_middleware(BearerBeforeBody, tokens=tokens)  # outermost: a stranger's body is never read
    install_error_handlers(api)
    for router in (*ROUTERS, dashboard):  # the dashboard's page and static files are public and hold no data
        api.include_router(router)
    return api


def app_from_environment() -> FastAPI:
    """The app factory of each `crm serve --workers N` process: CRM_DATABASE_URL and CRM_API_TOKENS_FILE.

    Workers start one at a time: their first-start DDL (triggers, tables) would collide if run at once.
    """
    database = database_from_environment()
    with advisory_lock(database, STARTUP_LOCK):  # before the application's SCHEMA_LOCK, always
        return create_app(database, TokenRegistry.from_env())
