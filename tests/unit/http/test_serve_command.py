"""`crm serve`: uvicorn on the configured log with the configured tokens; bad settings exit 1."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateways.cli import serve_command

runner = CliRunner()


class FakeServer:
    """Stands in for uvicorn.Server: keeps the config instead of listening."""

    started: list[Any] = []

    def __init__(self, config: Any) -> None:
        self.config = config

    def run(self) -> None:
        FakeServer.started.append(self.config)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    monkeypatch.delenv("CRM_API_TOKENS_FILE", raising=False)
    monkeypatch.setattr(serve_command.uvicorn, "Server", FakeServer)
    FakeServer.started.clear()
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command()(serve_command.serve)
    return app


def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    path.write_bytes(orjson.dumps({"tokens": [
        {"sha256": hashlib.sha256(b"s3cret").hexdigest(), "name": "李娜", "role": "sales"}]}))
    return path


def test_serve_runs_the_api_on_the_configured_log_host_port_and_tokens(cli: typer.Typer, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "8123",
                                 "--tokens-file", str(tokens_file(tmp_path))])

    assert result.exit_code == 0, result.output
    config = FakeServer.started[0]
    assert (config.host, config.port) == ("0.0.0.0", 8123)
    with TestClient(config.app) as client:
        response = client.get("/pipelines/sales", headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 200
    assert (tmp_path / "crm.sqlite3").exists()


def test_serve_without_tokens_exits_1_with_a_message(cli: typer.Typer) -> None:
    result = runner.invoke(cli, ["serve"])

    assert result.exit_code == 1
    assert "set CRM_API_TOKENS_FILE" in result.output and not FakeServer.started


def test_serve_with_an_unreadable_tokens_file_exits_1(cli: typer.Typer, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["serve", "--tokens-file", str(tmp_path / "missing.json")])

    assert result.exit_code == 1
    assert "cannot read tokens file" in result.output
