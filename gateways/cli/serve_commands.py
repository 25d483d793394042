"""`crm serve`: the HTTP API on the configured event log: gunicorn keeps N uvicorn workers alive (replacing
any that dies); an in-memory log is served by one uvicorn process (it cannot be shared)."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI

from gateways.cli.common import fail, start_logging
from gateways.http.access_log import hide_query_values
from gateways.http.app import PROJECTOR_VARIABLE, create_app
from gateways.http.connections import BODY_TIMEOUT, HEADER_TIMEOUT, MAX_CONNECTIONS, guarded_protocol
from gateways.http.tokens import TOKENS_FILE_VARIABLE, TokenConfigError, TokenRegistry
from gateways.http.workers import Limits, serve_workers
from services.projection_runtime.readiness import ready_max_lag_from_environment
from services.settings import SettingsError, database_from_environment
from services.sharding.bootstrap import check_shard_map
from services.sharding.shard_settings import shards_from_environment

# One per core and one more: the kernel spreads connections over the workers by hash, not by load, so a
# spare worker evens out a few busy keep-alive clients (measured with tests/benchmarks/http_commands.py).
DEFAULT_WORKERS = (os.cpu_count() or 1) + 1
log = logging.getLogger(__name__)


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    tokens_file: Annotated[Path | None, typer.Option(help="Bearer tokens (JSON, hashed); default "
                                                          "$CRM_API_TOKENS_FILE.")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes sharing the port, each with "
                                                            "its own app and database connections; one "
                                                            "that dies is replaced.")] = DEFAULT_WORKERS,
    header_timeout: Annotated[float, typer.Option(min=0.1, help="Seconds a request's headers may take to "
                                                                "arrive (then 408 and closed).")] = HEADER_TIMEOUT,
    body_timeout: Annotated[float, typer.Option(min=0.1, help="Seconds a request's body may take to arrive "
                                                              "after its headers.")] = BODY_TIMEOUT,
    max_connections: Annotated[int, typer.Option(min=1, help="Open connections per worker; more are "
                                                             "answered 503 and closed.")] = MAX_CONNECTIONS,
    projector: Annotated[bool, typer.Option(help="Keep the read models current in the background (one worker "
                                                 "at a time); --no-projector when `crm projections follow` "
                                                 "runs elsewhere.")] = True,
) -> None:
    """Serve the HTTP API (docs at /docs) on CRM_DATABASE_URL. Hash a token: python -m gateways.http.tokens hash T."""
    try:
        tokens = TokenRegistry.from_file(tokens_file) if tokens_file else TokenRegistry.from_env()
        shards = shards_from_environment()  # a bad list is refused here, with a message, not in each worker
        check_shard_map(shards)  # and a partition → shard table that disagrees with it
        database = shards[0] if shards else database_from_environment()
        ready_max_lag_from_environment()  # refused here too, not by each worker at its start
    except (TokenConfigError, SettingsError) as error:
        raise fail(str(error)) from None
    limits = Limits(header_timeout, body_timeout, max_connections)
    start_logging()
    if database.kind == "memory":
        if workers != 1:
            raise fail("an in-memory log cannot be shared by several workers; use --workers 1")
        serve_in_memory(create_app(database, tokens, follow_log=projector, shards=shards), host, port, limits)
        return
    if tokens_file:
        os.environ[TOKENS_FILE_VARIABLE] = str(tokens_file.resolve())  # inherited by the workers
    os.environ[PROJECTOR_VARIABLE] = "1" if projector else "0"
    serve_workers(host, port, workers, limits)  # SystemExit: 0 after SIGTERM, else gunicorn's reason


def serve_in_memory(api: FastAPI, host: str, port: int, limits: Limits) -> None:
    """One uvicorn process (an in-memory log cannot be shared), its start and stop logged as the workers' are."""
    log.info("serve: starting on %s:%d, in memory", host, port, extra={"component": "serve", "action": "start"})
    # uvicorn raises SIGTERM again after its graceful shutdown: exit 0 by this handler, the stop logged
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.Server(server_config(api, host, port, limits)).run()
    finally:
        log.info("serve: stopped", extra={"component": "serve", "action": "stop"})


def server_config(api: FastAPI, host: str, port: int, limits: Limits = Limits()) -> uvicorn.Config:
    """Uvicorn's settings for one process: its access log shows the request line (query values hidden) and
    status, never a header; slow clients are timed out and connections capped as in the workers."""
    config = uvicorn.Config(api, host=host, port=port, log_level="info",
                            http=guarded_protocol(limits.header_timeout, limits.body_timeout, limits.max_connections))
    hide_query_values()
    return config
