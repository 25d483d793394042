"""`crm import` with CRM_SHARD_URLS (three SQLite files): event lines and a CSV mapping, per-shard output, a dry
run that writes nothing, and the message of a run that finishes what a stopped one left."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateways.cli.main import app
from services.settings import database_from_url
from services.sharding import history_import
from services.sharding.router import ShardedApplication
from tests.conftest import at
from tests.unit.services.history.csv_import.conftest import FIXTURES

runner = CliRunner()


@pytest.fixture
def shard_urls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    urls = [f"sqlite:///{tmp_path}/s{i}.db" for i in range(3)]
    monkeypatch.setenv("CRM_SHARD_URLS", ",".join(urls))
    return urls


def heads(urls: list[str]) -> list[int]:
    crm = ShardedApplication([database_from_url(url) for url in urls], sync=False)
    try:
        return crm.event_counts()
    finally:
        crm.close()


def test_a_csv_mapping_imports_into_the_shards_and_a_dry_run_says_per_shard(shard_urls: list[str]) -> None:
    crm = ShardedApplication([database_from_url(url) for url in shard_urls])
    crm.ensure_default_pipelines(at(-30, "setup"))
    crm.close()
    mapping = str(FIXTURES / "hubspot" / "mapping.toml")

    planned = runner.invoke(app, ["import", mapping, "--dry-run"])
    before = heads(shard_urls)
    done = runner.invoke(app, ["import", mapping])
    again = runner.invoke(app, ["import", mapping])

    assert planned.exit_code == 0, planned.output
    assert [line.split(":")[0] for line in planned.output.splitlines() if line.startswith("shard ")] == [
        "shard 0", "shard 1", "shard 2"]
    assert done.exit_code == 0, done.output
    assert sum(heads(shard_urls)) > sum(before) and "shard 2:" in done.output
    assert again.exit_code == 0 and "Nothing new to import" in again.output


def test_event_lines_stopped_between_shards_are_finished_by_the_next_run(shard_urls: list[str], tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    single = tmp_path / "single.db"
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{single}")
    monkeypatch.delenv("CRM_SHARD_URLS")
    assert runner.invoke(app, ["import", str(FIXTURES / "hubspot" / "mapping.toml")]).exit_code == 0
    lines = tmp_path / "history.jsonl"
    assert runner.invoke(app, ["export", str(lines)]).exit_code == 0
    monkeypatch.setenv("CRM_SHARD_URLS", ",".join(shard_urls))

    def stop(shard: int) -> None:
        if shard == 0:
            raise SystemExit(9)

    monkeypatch.setattr(history_import, "after_shard_written", stop)
    stopped = runner.invoke(app, ["import", str(lines)])
    monkeypatch.undo()
    monkeypatch.setenv("CRM_SHARD_URLS", ",".join(shard_urls))
    finished = runner.invoke(app, ["import", str(lines)])

    assert stopped.exit_code == 9 and heads(shard_urls)[0] > 0
    assert finished.exit_code == 0, finished.output
    text = " ".join(finished.output.split())
    assert "shard 0:" in text and "already imported by an earlier run" in text and "nothing twice" in text
