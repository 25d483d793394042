"""`crm shards list` and `crm shards sync` on SQLite files (the PostgreSQL side: test_shards_postgres)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from gateways.cli.main import app
from tests.support.api_server import write_tokens_file

runner = CliRunner()


def test_list_shows_each_shards_partitions_and_events(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CRM_SHARD_URLS", ",".join(f"sqlite:///{tmp_path}/s{i}.db" for i in range(3)))

    result = runner.invoke(app, ["shards", "list", "--json"])

    assert result.exit_code == 0, result.output
    rows = orjson.loads(result.output)
    assert [(r["shard"], r["partitions"], r["partition_count"], r["events"]) for r in rows] == [
        (0, "0-63 every 3rd", 22, 0), (1, "1-61 every 3rd", 21, 0), (2, "2-62 every 3rd", 21, 0)]


def test_without_shards_list_shows_the_one_database_and_sync_refuses(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    monkeypatch.delenv("CRM_SHARD_URLS", raising=False)
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path}/crm.db")

    listed = runner.invoke(app, ["shards", "list"])
    synced = runner.invoke(app, ["shards", "sync"])

    assert listed.exit_code == 0 and "0-63" in listed.output
    assert synced.exit_code == 1 and "CRM_SHARD_URLS is not set" in " ".join(synced.output.split())


def test_a_bad_shard_list_is_a_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CRM_SHARD_URLS", f"sqlite:///{tmp_path}/a.db,sqlite:///{tmp_path}/a.db")

    result = runner.invoke(app, ["shards", "list"])

    assert result.exit_code == 1
    assert "shards 1 and 2 are the same database" in " ".join(result.output.split())


def test_serve_refuses_a_shard_map_that_disagrees_before_starting_workers(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    monkeypatch.setenv("CRM_SHARD_URLS", ",".join(f"sqlite:///{tmp_path}/s{i}.db" for i in range(3)))
    assert runner.invoke(app, ["shards", "list"]).exit_code == 0  # the table: 3 shards
    monkeypatch.setenv("CRM_SHARD_URLS", ",".join(f"sqlite:///{tmp_path}/s{i}.db" for i in range(2)))

    tokens = write_tokens_file(tmp_path, {"tok-sales-1": ("sam", "sales")})
    result = runner.invoke(app, ["serve", "--workers", "1", "--tokens-file", str(tokens)])

    assert result.exit_code == 1
    assert "CRM_SHARD_URLS lists 2 shards" in " ".join(result.output.split())
