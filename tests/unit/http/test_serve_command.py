"""`crm serve`: uvicorn on the configured log with the configured tokens, in one or several worker
processes; bad settings exit 1."""

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
from gateways.http.app import app_from_environment
from gateways.http.workers import APP_FACTORY, _listener

runner = CliRunner()


class FakeServer:
    """Stands in for uvicorn.Server: keeps the config instead of listening."""

    started: list[Any] = []

    def __init__(self, config: Any) -> None:
        self.config = config

    def run(self) -> None:
        FakeServer.started.append(self.config)


def fake_serve_workers(config: Any, workers: int) -> int:
    """Stands in for serve_workers: keeps the config instead of starting processes."""
    FakeServer.started.append((config, workers))
    return 0


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    monkeypatch.delenv("CRM_API_TOKENS_FILE", raising=False)
    monkeypatch.setattr(serve_command.uvicorn, "Server", FakeServer)
    monkeypatch.setattr(serve_command, "serve_workers", fake_serve_workers)
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
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "8123", "--workers", "1",
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


def test_serve_starts_the_default_number_of_workers_each_building_the_app_from_the_environment(
        cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_API_TOKENS_FILE", "")  # set by serve itself, for its workers
    result = runner.invoke(cli, ["serve", "--port", "8124", "--tokens-file", str(tokens_file(tmp_path))])

    assert result.exit_code == 0, result.output
    config, workers = FakeServer.started[0]
    assert workers == serve_command.DEFAULT_WORKERS > 1
    assert (config.app, config.factory, config.port) == (APP_FACTORY, True, 8124)
    with TestClient(app_from_environment()) as client:  # what each worker does
        response = client.get("/pipelines/sales", headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 200


def test_serve_refuses_several_workers_on_an_in_memory_log(cli: typer.Typer, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", "memory://")
    result = runner.invoke(cli, ["serve", "--workers", "2", "--tokens-file", str(tokens_file(tmp_path))])

    assert result.exit_code == 1
    assert "use --workers 1" in result.output and not FakeServer.started


def test_every_worker_listens_on_the_same_port() -> None:
    first = _listener("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = _listener("127.0.0.1", port)  # the kernel spreads connections over both
    with first, second:
        assert second.getsockname() == ("127.0.0.1", port)
