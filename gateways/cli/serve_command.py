"""`crm serve`: the HTTP API on the configured event log, with uvicorn (one or several worker processes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI

from gateways.cli.common import fail
from gateways.http.app import create_app
from gateways.http.tokens import TOKENS_FILE_VARIABLE, TokenConfigError, TokenRegistry
from gateways.http.workers import APP_FACTORY, serve_workers
from services.settings import SettingsError, database_from_environment

# One per core and one more: the kernel spreads connections over the workers by hash, not by load, so a
# spare worker evens out a few busy keep-alive clients (measured with tests/benchmarks/http_commands.py).
DEFAULT_WORKERS = (os.cpu_count() or 1) + 1


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    tokens_file: Annotated[Path | None, typer.Option(help="Bearer tokens (JSON, hashed); default "
                                                          "$CRM_API_TOKENS_FILE.")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes sharing the port, each with "
                                                            "its own app and database connections.")] = DEFAULT_WORKERS,
) -> None:
    """Serve the HTTP API (docs at /docs) on CRM_DATABASE_URL. Hash a token: python -m gateways.http.tokens hash T."""
    try:
        tokens = TokenRegistry.from_file(tokens_file) if tokens_file else TokenRegistry.from_env()
        database = database_from_environment()
    except (TokenConfigError, SettingsError) as error:
        raise fail(str(error)) from None
    if workers == 1:
        uvicorn.Server(server_config(create_app(database, tokens), host, port)).run()
        return
    if database.kind == "memory":
        raise fail("an in-memory log cannot be shared by several workers; use --workers 1")
    if tokens_file:
        os.environ[TOKENS_FILE_VARIABLE] = str(tokens_file.resolve())  # inherited by the workers
    if serve_workers(server_config(APP_FACTORY, host, port), workers) != 0:
        raise fail("a worker stopped; the others were stopped too (see the log above)")


def server_config(api: FastAPI | str, host: str, port: int) -> uvicorn.Config:
    """Uvicorn's settings: its access log shows the request line and status, never a header.

    For several workers, `api` is the import string of the app factory each of them calls.
    """
    return uvicorn.Config(api, host=host, port=port, factory=isinstance(api, str), log_level="info")
