"""The set-based rebuild on Spark, over a Parquet archive (`crm export --parquet DIR`): the path for a history
of hundreds of millions of events, on a cluster.

One text defines each fold: the slice's DuckDB SQL (`projections/<slice>/set_based.py`), run here as sqlglot
transpiles it to Spark's dialect (sqlglot, rather than a second hand-written Spark version that would drift
from DuckDB's). The archive's files become the relation `log_events` with the flat log's columns
(`services.bulk.log_reader.LOG_SCHEMA`) and the archive's `month` key; every table a statement creates is a
temporary view of the session, whose rows the caller collects or writes (to Parquet, on a cluster).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import sqlglot

from projections.funnel import rows as funnel_rows
from projections.funnel import set_based as funnel_fold
from services.bulk.log_reader import LOG_SCHEMA

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

LOG_RELATION = "log_events"
_SPARK_TYPES = {pa.int64(): "BIGINT", pa.int16(): "SMALLINT", pa.string(): "STRING"}


def archive_schema() -> str:
    """The archive's columns as Spark DDL: the flat log's, then the `month` key. Given rather than inferred:
    inference would read `partition` as INT and scan every file's footer first."""
    columns = [f"`{f.name}` {_SPARK_TYPES.get(f.type, 'TIMESTAMP')}" for f in LOG_SCHEMA]
    return ", ".join([*columns, "`month` STRING"])


def read_archive(spark: SparkSession, directory: str | Path) -> DataFrame:
    """The archive at `directory` (a local path, or any URL Spark reads: hdfs://, s3a://) as `log_events`."""
    frame = spark.read.schema(archive_schema()).option("basePath", str(directory)).parquet(str(directory))
    frame.createOrReplaceTempView(LOG_RELATION)
    return frame


def to_spark(select: str) -> str:
    """A DuckDB query in Spark's dialect (sqlglot: `json_extract_string` → `get_json_object`, `string_agg` →
    `listagg`, `epoch`/`date_diff` → Spark's, quoted names → backquotes)."""
    return sqlglot.transpile(select, read="duckdb", write="spark")[0]


def run_steps(spark: SparkSession, steps: Sequence[tuple[str, str]], after: dict[str, Callable[[], None]]) -> None:
    """Each named SELECT of a fold as a cached view of that name, in order (a later step reads the earlier
    ones by name, as DuckDB's temporary tables); `after[name]()` runs once the step `name` exists.

    Cached (lazily: computed once, where first used, then kept in memory and spilled to disk beyond it) because
    a step is read by several later ones: as plain views, the log would be scanned and its JSON parsed again
    for each of them."""
    for name, select in steps:
        spark.sql(f"CACHE LAZY TABLE {name} AS {to_spark(select)}")
        if name in after:
            after[name]()


def fold_funnel(spark: SparkSession) -> dict[str, DataFrame]:
    """The funnel's set-based fold (`projections.funnel.set_based`) over `log_events`: each read-model table's
    rows, in the table's columns."""
    run_steps(spark, funnel_fold.STEPS, {funnel_fold.LEVELS_AFTER: lambda: _pipeline_levels(spark)})
    return {table.name: spark.table(funnel_fold.TABLES[table.name]).select(*table.column_names)
            for table in funnel_rows.TABLES}


def _pipeline_levels(spark: SparkSession) -> None:
    """The pipelines' stage lists, folded in Python from their few events (`set_based.pipeline_stages`), as the
    views `funnel_stage_levels` and `funnel_pipelines_rows`."""
    events = [tuple(row) for row in spark.sql(to_spark(funnel_fold.PIPELINE_EVENTS)).collect()]
    pipelines = [row[0] for row in spark.sql(to_spark(funnel_fold.ITEM_PIPELINES)).collect()]
    stages = funnel_fold.pipeline_stages(events, pipelines)
    spark.createDataFrame([tuple(level) for level in stages.levels],
                          "pipeline STRING, stage STRING, level BIGINT, since BIGINT"
                          ).createOrReplaceTempView("funnel_stage_levels")
    spark.createDataFrame(stages.rows, "pipeline_id STRING, pipeline STRING, stages STRING"
                          ).createOrReplaceTempView("funnel_pipelines_rows")
