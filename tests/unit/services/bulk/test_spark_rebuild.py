"""The Spark rebuild's text (services.bulk.spark_rebuild) without Spark: the archive's schema and the funnel's
steps in Spark's dialect. The rebuild itself runs in tests/integration/test_spark_rebuild.py (Java, ≈ 20 s)."""

from __future__ import annotations

import pytest

from projections.funnel import set_based
from services.bulk.log_reader import LOG_SCHEMA
from services.bulk.spark_rebuild import archive_schema, to_spark


def test_the_archive_schema_is_the_flat_logs_then_the_month() -> None:
    columns = [column.split(" ")[0].strip("`") for column in archive_schema().split(", ")]
    assert columns == [*LOG_SCHEMA.names, "month"]
    assert "`partition` SMALLINT" in archive_schema() and "`recorded_at` TIMESTAMP" in archive_schema()


@pytest.mark.parametrize(("name", "select"), set_based.STEPS, ids=[name for name, _ in set_based.STEPS])
def test_every_step_of_the_funnel_translates_to_spark(name: str, select: str) -> None:
    spark = to_spark(select)
    assert "json_extract" not in spark.lower() and "string_agg" not in spark.lower()
