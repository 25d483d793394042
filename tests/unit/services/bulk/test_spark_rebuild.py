"""The Spark rebuild (services.bulk.spark_rebuild) without Spark: the archive's schema. The funnel's steps in
Spark's dialect: tests/unit/projections/funnel/test_set_based.py; the zone's days transpiled; a bad `--tz`; the rebuild itself runs in
tests/integration/test_spark_rebuild.py (Java, ≈ 20–30 s idle)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from projections.funnel.set_based import zoned_day_columns
from services.bulk.log_reader import LOG_SCHEMA
from services.bulk.spark_rebuild import archive_schema, main, to_spark


def test_the_archive_schema_is_the_flat_logs_then_the_month() -> None:
    columns = [column.split(" ")[0].strip("`") for column in archive_schema().split(", ")]
    assert columns == [*LOG_SCHEMA.names, "month"]
    assert "`partition` SMALLINT" in archive_schema() and "`recorded_at` TIMESTAMP" in archive_schema()


def test_a_zone_the_database_lacks_is_refused_with_a_sentence_before_spark_starts(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["archive", "out", "--tz", "Mars/Olympus"])
    error = capsys.readouterr().err
    assert exited.value.code == 1 and error.startswith("--tz:") and "Mars/Olympus" in error


def test_zoned_days_transpile_to_spark_and_are_none_for_utc() -> None:
    columns = zoned_day_columns(ZoneInfo("Asia/Shanghai"), 0, 10**15)
    assert set(columns) == {"at_day", "at_month"} and zoned_day_columns(ZoneInfo("UTC"), 0, 10**15) is None
    assert all("TIMESTAMP_MICROS(" in to_spark(f"SELECT {e}") for e in columns.values())
