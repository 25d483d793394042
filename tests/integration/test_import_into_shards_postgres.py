"""`crm import` into three PostgreSQL shards (COPY per shard): a process SIGKILLed between two shards' commits,
then the same `crm import` again, finishes the rest and writes nothing twice — for event lines and for a CSV
mapping. Three temporary databases on the test server (dropped after), migrated as `crm db migrate` does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.partitions import is_reference, partition_of
from services.application import CrmApplication
from services.history import exporter
from services.history.csv_import.csv_importer import run_csv_import
from services.history.csv_import.mapping import load_mapping
from services.projection_runtime.partitioned import aggregate_kind
from services.settings import Database, database_from_url
from services.sharding.router import ShardedApplication
from services.sharding.shard_settings import SHARD_URLS_VARIABLE
from tests.support.shards import migrated_shards
from tests.unit.services.history.csv_import.conftest import FIXTURES

CRM = [sys.executable, "-m", "gateways.cli.main"]
DIE = [sys.executable, "-m", "tests.support.die_importing_between_shards"]


@pytest.fixture(scope="module")
def shards(postgres_url: str) -> Iterator[list[Database]]:
    with migrated_shards(postgres_url, "crm_shimp") as databases:
        yield databases


@pytest.fixture
def crm(shards: list[Database]) -> Iterator[ShardedApplication]:
    app = ShardedApplication(shards, sync=False)
    yield app
    app.close()


def run(command: list[str], shards: list[Database]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, SHARD_URLS_VARIABLE: ",".join(d.url for d in shards)}
    env.pop("CRM_SHARD_OWNER_URLS", None)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def placed(crm: ShardedApplication) -> dict[str, int]:
    """Events per kind of placement; fails if a record's event is on another shard than its partition's."""
    counts = {"records": 0, "reference": 0}
    for shard, app in enumerate(crm.apps):
        for _, event in app.read_log():
            if is_reference(aggregate_kind(event)):
                counts["reference"] += 1
            else:
                assert crm.shard_of(partition_of(event.originator_id)) == shard
                counts["records"] += 1
    return counts


def test_event_lines_killed_between_shards_are_finished_by_the_same_import(
        tmp_path: Path, shards: list[Database], crm: ShardedApplication) -> None:
    source = CrmApplication(database_from_url(f"sqlite:///{tmp_path}/source.db"))
    run_csv_import(source, load_mapping(FIXTURES / "hubspot" / "mapping.toml"))
    lines = tmp_path / "history.jsonl"
    with lines.open("wb") as out:
        exported = exporter.export_history(source, out, lambda done, total: None)
    before = placed(crm)

    died = run([*DIE, "0", str(lines)], shards)
    assert died.returncode == -9, died.stderr
    after_kill = crm.event_counts()
    finished = run([*CRM, "import", str(lines)], shards)
    again = run([*CRM, "import", str(lines)], shards)

    assert finished.returncode == 0, finished.stderr
    text = " ".join(finished.stdout.split())
    assert "shard 0:" in text and "already imported by an earlier run" in text and "nothing twice" in text
    assert again.returncode == 0 and "imported already" in " ".join(again.stdout.split())
    counts = placed(crm)
    assert counts["records"] - before["records"] + sum(1 for _, e in source.read_log()
                                                      if is_reference(aggregate_kind(e))) == exported
    assert crm.event_counts()[0] == after_kill[0]  # shard 0 was not written twice
    assert crm.sync()[1:] == [0, 0]  # every shard holds the reference data
    source.close()


def test_a_csv_import_killed_between_shards_is_finished_by_the_same_import(shards: list[Database],
                                                                           crm: ShardedApplication) -> None:
    mapping = str(FIXTURES / "salesforce" / "mapping.toml")
    planned = run([*CRM, "import", mapping, "--dry-run"], shards)
    assert planned.returncode == 0, planned.stderr
    before = sum(crm.event_counts())

    died = run([*DIE, "1", mapping], shards)
    assert died.returncode == -9, died.stderr
    finished = run([*CRM, "import", mapping], shards)
    again = run([*CRM, "import", mapping], shards)

    assert finished.returncode == 0, finished.stderr
    assert "already imported" in finished.stdout and "records unchanged" in finished.stdout  # the shards written
    assert "shard 0: nothing to write" in finished.stdout
    assert again.returncode == 0 and "Nothing new to import" in again.stdout
    placed(crm)
    assert crm.sync()[1:] == [0, 0]
    assert sum(crm.event_counts()) > before
