"""The archive's rebuild on Spark (issue 14): the demo history on PostgreSQL, exported by `crm export --parquet`,
folded by the funnel's set-based SQL transpiled to Spark (`local[2]`) and written as Parquet, equals the funnel
read model the handlers built, table by table and cell by cell."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from gateways.cli.main import app as cli
from projections.funnel.rows import TABLES
from projections.tables import Table
from services.application import CrmApplication
from services.bulk.parquet_archive import MANIFEST
from services.bulk.spark_rebuild import ArchiveNotFoldable, rebuild_to_parquet
from services.demo.sample_data import DemoHistory, DemoSettings
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

Row = dict[str, Any]


def comparable(table: Table, row: Row) -> Row:
    """A row with its JSON columns parsed (the handlers' and the SQL's key orders differ)."""
    return {column: orjson.loads(value) if column in table.json_columns and value is not None else value
            for column, value in row.items()}


def differences(table: Table, expected: list[Row], actual: list[Row]) -> list[str]:
    """Every cell that differs, every row missing or extra, by the table's key."""
    def keyed(rows: list[Row]) -> dict[tuple[Any, ...], Row]:
        return {tuple(row[k] for k in table.key): comparable(table, row) for row in rows}
    want, have = keyed(expected), keyed(actual)
    found = [f"{table.name} {key}: missing" for key in want.keys() - have.keys()]
    found += [f"{table.name} {key}: extra" for key in have.keys() - want.keys()]
    found += [f"{table.name} {key} {column}: {want[key][column]!r} ≠ {have[key][column]!r}"
              for key in want.keys() & have.keys() for column in table.column_names
              if want[key][column] != have[key][column]]
    assert len(want) == len(expected) and len(have) == len(actual), f"{table.name}: duplicate keys"
    return found


def test_the_funnel_rebuilt_on_spark_from_the_archive_equals_the_read_model(pg_database: str, spark: Any,
                                                                             tmp_path: Path, monkeypatch) -> None:
    """In a zone with summer time (the demo's 200 days cross a change): the tallies' days and months are New
    York's on both paths (the handlers' `zoneinfo`, the fold's offset changes transpiled to Spark)."""
    monkeypatch.setenv("CRM_TIME_ZONE", "America/New_York")
    crm = CrmApplication(database_from_url(pg_database))
    crm.ensure_default_pipelines()
    DemoHistory(crm, DemoSettings(seed=5, leads=300, days=200)).run()
    store = ReadModelStore(crm.database)
    projector_for(crm, store, ["funnel"]).rebuild()
    exported = CliRunner().invoke(cli, ["export", "--parquet", str(tmp_path / "archive")],
                                  env={"CRM_DATABASE_URL": pg_database, "CRM_SHARD_URLS": ""})
    assert exported.exit_code == 0, exported.output

    written = rebuild_to_parquet(spark, str(tmp_path / "archive"), str(tmp_path / "funnel"),
                                 ZoneInfo("America/New_York"))

    found, cells = [], 0
    for table in TABLES:
        expected = [dict(zip(table.column_names, row))
                    for row in store.query(f"SELECT {', '.join(table.column_names)} FROM {table.name}")]
        actual = pq.read_table(written[table.name]).to_pylist()
        found += differences(table, expected, actual)
        cells += len(expected) * len(table.column_names)
    assert not found, f"{len(found)} differences, the first: " + "\n".join(found[:20])
    assert cells > 20_000  # the demo's funnel: ≈ 4,600 rows in 9 tables
    store.close()
    crm.close()


def test_an_archive_of_several_shards_or_none_is_refused_not_folded_wrong(spark: Any, tmp_path: Path) -> None:
    """The fold orders events by log position, which only orders one log's events (review of issue 14)."""
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    (sharded / MANIFEST).write_text('{"format": 1, "heads": [10, 7, 3], "exports": []}')

    with pytest.raises(ArchiveNotFoldable, match="archive of 3 shards"):
        rebuild_to_parquet(spark, str(sharded), str(tmp_path / "out"))
    with pytest.raises(ArchiveNotFoldable, match="holds no _crm_archive.json"):
        rebuild_to_parquet(spark, str(tmp_path), str(tmp_path / "out"))
