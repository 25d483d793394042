"""The HTTP benchmark's baseline server: `crm serve`'s stack around one endpoint that does one INSERT + COMMIT.

What it shares with `crm serve`: gunicorn keeping N workers of `gateways.http.workers.CrmWorker` (uvicorn,
the slow-client protocol, SO_REUSEPORT sockets, the access log), FastAPI with orjson answers, the strict
JSON route class, and the same middleware in the same order (bearer token before the body, body limit,
database guard; not the freshness headers, which need the application). The endpoint has the stage
change's path, body and answer shape, authenticates with `deals:write` as the real route does, and writes
one stored-event-shaped row (tests/benchmarks/writers.py's plain table) in one autocommit INSERT from a
connection pool: what a request costs when the CRM adds nothing (no aggregate loaded, no domain, no log
lock). commands/s ÷ this requests/s is the figure that means the same on any machine.

Why a separate app rather than a hidden route of the production one: a route in `create_app` would be
one more thing a token can reach in production (it writes), and its presence would be the benchmark's,
not the product's. This module builds its app from the same pieces and is started only by the benchmark:
`python -m tests.benchmarks.http_baseline PORT WORKERS` with CRM_DATABASE_URL and CRM_API_TOKENS_FILE.
"""

from __future__ import annotations

import sys
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from psycopg import sql
from psycopg_pool import ConnectionPool

from gateways.http.app import MAX_BODY_BYTES
from gateways.http.auth import BearerBeforeBody, allow
from gateways.http.availability import DatabaseGuard, DatabaseProbe
from gateways.http.error_responses import install_error_handlers
from gateways.http.json_body import StrictJsonRoute
from gateways.http.limits import BodyLimit
from gateways.http.responses import OrjsonResponse, json_response
from gateways.http.tokens import TokenRegistry
from gateways.http.workers import CrmServer, Limits
from services.settings import database_from_environment
from services.storage.read_model_store import ReadModelStore
from tests.benchmarks.writers import BASELINE_TABLE

POOL_SIZE = (2, 10)  # min, max connections per worker: the recorder's pool is of the same order


class StageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: str
    reason: str = ""


def baseline_app() -> FastAPI:
    """The minimal app on CRM_DATABASE_URL (its tables made by the benchmark), tokens from CRM_API_TOKENS_FILE."""
    database = database_from_environment()
    store = ReadModelStore(database)  # the database guard's probe, as in create_app
    pool = ConnectionPool(database.url, min_size=POOL_SIZE[0], max_size=POOL_SIZE[1], kwargs={"autocommit": True},
                          open=True)
    insert = sql.SQL("INSERT INTO {} (originator_id, originator_version, topic, state) VALUES (%s, 1, %s, %s)"
                     ).format(sql.Identifier(BASELINE_TABLE))
    router = APIRouter(route_class=StrictJsonRoute)

    @router.put("/deals/{deal_id}/stage")
    def change_stage(deal_id: UUID, body: StageBody,
                     principal: Annotated[object, Depends(allow("deals:write"))]) -> Response:
        with pool.connection() as connection:
            connection.execute(insert, (uuid4(), f"bench:{deal_id}", body.model_dump_json().encode()), prepare=True)
        return json_response({"id": deal_id, "version": 1}, version=1)

    @router.get("/health")
    def health() -> Response:
        return json_response({"status": "ok"})

    api = FastAPI(title="HTTP benchmark baseline", default_response_class=OrjsonResponse)
    api.state.tokens = TokenRegistry.from_env()
    api.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    api.add_middleware(DatabaseGuard, probe=DatabaseProbe(store))
    api.add_middleware(BearerBeforeBody, tokens=api.state.tokens)
    install_error_handlers(api)
    api.include_router(router)
    return api


class BaselineServer(CrmServer):
    """`crm serve`'s gunicorn and workers, loading the baseline app in each worker."""

    def load(self) -> FastAPI:
        return baseline_app()


if __name__ == "__main__":
    BaselineServer("127.0.0.1", int(sys.argv[1]), int(sys.argv[2]), Limits()).run()
