"""`crm serve`: gunicorn keeping N uvicorn workers on the configured log with the configured tokens (one
uvicorn process for an in-memory log); bad settings exit 1."""

from __future__ import annotations

import hashlib
import logging
import socket
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gunicorn.sock import create_sockets

from gateways.cli import serve_commands
from gateways.http.connections import GuardedHttpProtocol
from gateways.http.workers import CrmServer, CrmWorker, Limits

runner = CliRunner()


class FakeServer:
    """Stands in for uvicorn.Server: keeps the config instead of listening."""

    started: list[Any] = []

    def __init__(self, config: Any) -> None:
        self.config = config

    def run(self) -> None:
        FakeServer.started.append(self.config)


def fake_serve_workers(host: str, port: int, workers: int, limits: Limits) -> None:
    """Stands in for serve_workers: keeps the settings instead of starting processes."""
    FakeServer.started.append((host, port, workers, limits))


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    monkeypatch.delenv("CRM_API_TOKENS_FILE", raising=False)
    monkeypatch.setattr(serve_commands.uvicorn, "Server", FakeServer)
    monkeypatch.setattr(serve_commands, "serve_workers", fake_serve_workers)
    FakeServer.started.clear()
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command()(serve_commands.serve)
    return app


def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    path.write_bytes(orjson.dumps({"tokens": [
        {"sha256": hashlib.sha256(b"s3cret").hexdigest(), "name": "李娜", "role": "sales"}]}))
    return path


def test_serve_runs_an_in_memory_log_in_one_uvicorn_process_on_the_host_port_and_tokens(
        cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", "memory://")
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "8123", "--workers", "1",
                                 "--tokens-file", str(tokens_file(tmp_path)), "--header-timeout", "2"])

    assert result.exit_code == 0, result.output
    config = FakeServer.started[0]
    assert (config.host, config.port) == ("0.0.0.0", 8123)
    assert issubclass(config.http, GuardedHttpProtocol) and config.http.header_timeout == 2
    with TestClient(config.app) as client:
        response = client.get("/pipelines/sales", headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 200


def test_serve_runs_one_kept_alive_worker_on_the_configured_log_host_port_and_limits(
        cli: typer.Typer, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "8123", "--workers", "1",
                                 "--tokens-file", str(tokens_file(tmp_path)), "--header-timeout", "2",
                                 "--body-timeout", "3", "--max-connections", "7"])

    assert result.exit_code == 0, result.output
    assert FakeServer.started == [("0.0.0.0", 8123, 1, Limits(2, 3, 7))]
    with TestClient(CrmServer("0.0.0.0", 8123, 1, Limits()).load()) as client:  # what the worker does
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
    host, port, workers, limits = FakeServer.started[0]
    assert workers == serve_commands.DEFAULT_WORKERS > 1
    server = CrmServer(host, port, workers, limits)
    assert (server.cfg.bind, server.cfg.workers, server.cfg.worker_class) == (["127.0.0.1:8124"], workers, CrmWorker)
    with TestClient(server.load()) as client:  # what each worker does
        response = client.get("/pipelines/sales", headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 200


def test_serve_refuses_several_workers_on_an_in_memory_log(cli: typer.Typer, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", "memory://")
    result = runner.invoke(cli, ["serve", "--workers", "2", "--tokens-file", str(tokens_file(tmp_path))])

    assert result.exit_code == 1
    assert "use --workers 1" in result.output and not FakeServer.started


def test_every_worker_listens_on_the_same_port_with_a_socket_of_its_own() -> None:
    """With reuse_port, gunicorn creates the listening sockets in each worker (the kernel spreads
    connections over them) and none in the arbiter."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = CrmServer("127.0.0.1", port, 2, Limits())
    assert server.cfg.reuse_port
    first = create_sockets(server.cfg, logging.getLogger("test"))
    second = create_sockets(server.cfg, logging.getLogger("test"))  # as the second worker does
    try:
        assert first[0].getsockname() == second[0].getsockname() == ("127.0.0.1", port)
    finally:
        for listener in (*first, *second):
            listener.close()

def test_serve_refuses_a_lag_allowed_that_is_not_a_number_of_events(cli: typer.Typer, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_READY_MAX_LAG", "ten thousand")
    result = runner.invoke(cli, ["serve", "--tokens-file", str(tokens_file(tmp_path))])

    assert result.exit_code == 1
    assert "CRM_READY_MAX_LAG must be a whole number of events" in result.output and not FakeServer.started
