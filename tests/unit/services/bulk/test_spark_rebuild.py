"""The Spark rebuild (services.bulk.spark_rebuild) without Spark: the archive's schema. The funnel's steps in
Spark's dialect: tests/unit/projections/funnel/test_set_based.py; the rebuild itself runs in
tests/integration/test_spark_rebuild.py (Java, ≈ 20–30 s idle)."""

from __future__ import annotations

from services.bulk.log_reader import LOG_SCHEMA
from services.bulk.spark_rebuild import archive_schema


def test_the_archive_schema_is_the_flat_logs_then_the_month() -> None:
    columns = [column.split(" ")[0].strip("`") for column in archive_schema().split(", ")]
    assert columns == [*LOG_SCHEMA.names, "month"]
    assert "`partition` SMALLINT" in archive_schema() and "`recorded_at` TIMESTAMP" in archive_schema()
