"""`crm serve`: the HTTP API on the configured event log, with uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI

from gateways.cli.common import fail
from gateways.http.app import create_app
from gateways.http.tokens import TokenConfigError, TokenRegistry
from services.settings import SettingsError, database_from_environment


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    tokens_file: Annotated[Path | None, typer.Option(help="Bearer tokens (JSON, hashed); default "
                                                          "$CRM_API_TOKENS_FILE.")] = None,
) -> None:
    """Serve the HTTP API (docs at /docs) on CRM_DATABASE_URL. Hash a token: python -m gateways.http.tokens hash T."""
    try:
        tokens = TokenRegistry.from_file(tokens_file) if tokens_file else TokenRegistry.from_env()
        api = create_app(database_from_environment(), tokens)
    except (TokenConfigError, SettingsError) as error:
        raise fail(str(error)) from None
    uvicorn.Server(server_config(api, host, port)).run()


def server_config(api: FastAPI, host: str, port: int) -> uvicorn.Config:
    """Uvicorn's settings: its access log shows the request line and status, never a header."""
    return uvicorn.Config(api, host=host, port=port, log_level="info")
