"""The Parquet archive (services.bulk.parquet_archive): its layout by recorded month and home partition, exports
that add only what is new, refusals; on SQLite logs and hand-made batches."""

from __future__ import annotations

import fcntl
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from domain.base import Meta
from domain.partitions import in_partition
from services.application import CrmApplication
from services.bulk.log_reader import LOG_SCHEMA, read_log
from services.bulk.parquet_archive import (LOCK_FILE, MANIFEST, PARTITIONING, ArchiveRefused, export_archive,
                                           fed_from_this_thread, read_manifest, write_export)
from services.commands import OpenDeal, RegisterCustomer
from services.settings import Database, database_from_url
from tests.conftest import at
from tests.support.shards import sharded


def archived(directory: Path) -> pa.Table:
    """The archive as its readers see it: the files under the hive keys, sorted by position."""
    table = ds.dataset(directory, format="parquet", partitioning=PARTITIONING).to_table()
    return table.sort_by("position")


def log_with_a_deal(path: Path) -> tuple[Database, CrmApplication]:
    database = database_from_url(f"sqlite:///{path}")
    app = CrmApplication(database)
    app.ensure_default_pipelines(at(-1))
    customer = app.register_customer(RegisterCustomer("张三", "华东", "制造业", "web"), at(0))
    app.open_deal(OpenDeal(customer, "项目", "1234.50", owner="李娜"), at(1))
    return database, app


def test_an_export_writes_every_event_once_by_month_and_partition(tmp_path: Path) -> None:
    database, app = log_with_a_deal(tmp_path / "log.db")
    events, manifest = export_archive([database], tmp_path / "archive")
    with read_log(database) as read:
        log = read.table()
    table = archived(tmp_path / "archive")
    assert events == log.num_rows == table.num_rows == 5 and manifest.heads == [5]
    assert table.select(LOG_SCHEMA.names).cast(LOG_SCHEMA).equals(log)
    month = log.column("recorded_at")[0].as_py().strftime("%Y-%m")
    for row in log.to_pylist():
        files = list((tmp_path / "archive" / f"month={month}" / f"partition={row['partition']}").glob("*.parquet"))
        assert [f.name for f in files] == ["part-1-0.parquet"]
    assert {r["partition"] for r in log.to_pylist() if r["kind"] == "Pipeline"} == {-1}
    app.close()


def test_a_second_export_into_the_same_directory_while_one_runs_is_refused(tmp_path: Path) -> None:
    database, app = log_with_a_deal(tmp_path / "log.db")
    archive = tmp_path / "archive"
    archive.mkdir()
    with open(archive / LOCK_FILE, "a") as running:  # what a running export holds
        fcntl.flock(running, fcntl.LOCK_EX)
        with pytest.raises(ArchiveRefused, match="another export into .* is running"):
            export_archive([database], archive)
        assert not (archive / MANIFEST).exists()
    assert export_archive([database], archive)[0] == 5  # the lock file alone does not make it "not empty"
    app.close()


def test_exporting_again_adds_only_the_new_events_in_new_files(tmp_path: Path) -> None:
    database, app = log_with_a_deal(tmp_path / "log.db")
    export_archive([database], tmp_path / "archive")
    assert export_archive([database], tmp_path / "archive")[0] == 0  # nothing new: no export recorded
    app.register_customer(RegisterCustomer("李四", "华南", "零售", "email"), at(2))
    events, manifest = export_archive([database], tmp_path / "archive")
    assert (events, manifest.heads, manifest.number) == (1, [6], 2)
    assert archived(tmp_path / "archive").column("position").to_pylist() == [1, 2, 3, 4, 5, 6]
    assert len(list((tmp_path / "archive").glob("month=*/partition=*/part-2-*.parquet"))) == 1
    app.close()


def test_a_crashed_exports_files_are_replaced_not_added_to(tmp_path: Path) -> None:
    database, app = log_with_a_deal(tmp_path / "log.db")
    export_archive([database], tmp_path / "archive")
    app.register_customer(RegisterCustomer("李四", "华南", "零售", "email"), at(2))
    with read_log(database, start=5) as read:  # export 2 wrote its files, then died before its manifest
        write_export(tmp_path / "archive", 2, read.batches)
    (tmp_path / "archive" / "_export-3").mkdir()  # and another one died while staging
    export_archive([database], tmp_path / "archive")
    assert archived(tmp_path / "archive").column("position").to_pylist() == [1, 2, 3, 4, 5, 6]
    assert not list((tmp_path / "archive").glob("_export-*"))
    app.close()


def test_months_are_the_utc_months_events_were_recorded_in(tmp_path: Path) -> None:
    recorded = [datetime(2026, 1, 31, 23, 30, tzinfo=timezone.utc), datetime(2026, 2, 1, 0, 30, tzinfo=timezone.utc)]
    batch = pa.RecordBatch.from_pylist(
        [{"position": n, "partition": 3, "aggregate_id": "a", "version": n, "kind": "Deal", "event": "Opened",
          "recorded_at": when, "state": "{}"} for n, when in enumerate(recorded, 1)], schema=LOG_SCHEMA)
    assert write_export(tmp_path, 1, [batch]) == 2
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.parquet")) == [
        "month=2026-01/partition=3/part-1-0.parquet", "month=2026-02/partition=3/part-1-0.parquet"]


def test_a_directory_that_is_not_an_archive_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ArchiveRefused, match="not empty"):
        read_manifest(tmp_path, 1)
    (tmp_path / "notes.txt").unlink()
    assert read_manifest(tmp_path, 2).heads == [0, 0]
    (tmp_path / MANIFEST).write_text('{"format": "crm-log-archive/1", "heads": [4], "exports": []}')
    with pytest.raises(ArchiveRefused, match="1 shard"):
        read_manifest(tmp_path, 2)


def test_every_shard_is_exported_with_reference_data_once(tmp_path: Path) -> None:
    shards = [database_from_url(f"sqlite:///{tmp_path}/shard{i}.db") for i in range(2)]
    with sharded(shards) as crm:
        for partition in range(4):  # two customers on each shard (partition mod 2)
            crm.handle(RegisterCustomer("Ann", id=in_partition(partition)), Meta(actor="test"))
        events, manifest = export_archive(shards, tmp_path / "archive")
        assert manifest.heads == crm.event_counts() and events == sum(crm.event_counts()) - 3  # pipelines' copies
        crm.handle(RegisterCustomer("Bo", id=in_partition(5)), Meta(actor="test"))
        assert export_archive(shards, tmp_path / "archive")[0] == 1
    rows = archived(tmp_path / "archive").to_pylist()
    assert sorted(r["partition"] for r in rows if r["kind"] == "Customer") == [0, 1, 2, 3, 5]
    assert sorted(r["aggregate_id"] for r in rows if r["kind"] == "Pipeline") == sorted(
        {r["aggregate_id"] for r in rows if r["kind"] == "Pipeline"})  # each pipeline once


def test_a_failing_writer_stops_the_read_and_its_error_is_raised_here() -> None:
    read = []

    def batches():
        for n in range(1000):
            read.append(n)
            yield pa.RecordBatch.from_pylist([{"n": n}])

    def write(source) -> None:
        next(iter(source))
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        fed_from_this_thread(write, batches())
    assert len(read) < 10
