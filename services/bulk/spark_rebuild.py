"""The set-based rebuild on Spark, over a Parquet archive (`crm export --parquet DIR`): the path for a history
of hundreds of millions of events, on a cluster.

One text defines each fold: the slice's DuckDB SQL (`projections/<slice>/set_based.py`), run here as sqlglot
transpiles it to Spark's dialect (rather than a second, hand-written Spark version that would drift from
DuckDB's). The archive's files become the relation `log_events` (the flat log's columns,
`services.bulk.log_reader.LOG_SCHEMA`, and the archive's `month`); each step of a fold becomes a view of its
name; the read-model tables come out as DataFrames, which `spark-submit services/bulk/spark_rebuild.py ARCHIVE
OUTPUT` writes as Parquet. Only SQL runs on the executors (no Python function), so a cluster's workers need
Spark and Java, not this project: its code and Python libraries are needed on the driver only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from datetime import tzinfo
from typing import TYPE_CHECKING

import pyarrow as pa
import sqlglot
from sqlglot import ErrorLevel

from domain.periods import UTC
from projections.funnel import rows as funnel_rows
from projections.funnel import set_based as funnel_fold
from services.bulk.log_reader import LOG_SCHEMA

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

LOG_RELATION = "log_events"
_LEVELS = pa.schema([("pipeline", pa.string()), ("stage", pa.string()), ("level", pa.int64()), ("since", pa.int64())])
_PIPELINES = pa.schema([("pipeline_id", pa.string()), ("pipeline", pa.string()), ("stages", pa.string())])
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
    `listagg`, `date_diff` → `datediff`, quoted names → backquotes). What sqlglot knows it cannot translate
    raises (sqlglot.errors.UnsupportedError); not all: it drops an aggregate's ORDER BY (`array_agg(x ORDER BY
    y)` → `collect_list(x)`, whose order Spark does not keep), so a fold must not depend on one — the funnel's
    JSON objects do not (tests/integration/test_spark_rebuild.py compares them parsed)."""
    return sqlglot.transpile(select, read="duckdb", write="spark", unsupported_level=ErrorLevel.RAISE)[0]


def run_steps(spark: SparkSession, steps: Sequence[tuple[str, str]], outputs: Collection[str] = (),
              after: Mapping[str, Callable[[], None]] | None = None) -> None:
    """Each named SELECT of a fold as a view of that name, in order (a later step reads the earlier ones by
    name, as DuckDB's temporary tables); `after[name]()` runs once the step `name` exists.

    A step read more than once (by later steps, or as one of the `outputs` and read again) is computed once
    and kept (`localCheckpoint`: by the executors, in memory and spilled to disk beyond it), which also cuts
    it from its lineage; a step read once stays a plain view, planned into its reader (one Spark job fewer).
    Without the cut, every plan holds those of all the steps it reads, which grow exponentially: as cached
    views the funnel's last plans printed to 132 million characters and the demo's rebuild took ten minutes."""
    for index, (name, select) in enumerate(steps):
        frame = spark.sql(to_spark(select))
        reads = sum(len(re.findall(rf"\b{name}\b", later)) for _, later in steps[index + 1:])
        if reads + (name in outputs) > 1 or (after and name in after):
            frame = frame.localCheckpoint(eager=True)
        frame.createOrReplaceTempView(name)
        if after and name in after:
            after[name]()


def fold_funnel(spark: SparkSession, zone: tzinfo = UTC) -> dict[str, DataFrame]:
    """The funnel's set-based fold (`projections.funnel.set_based`) over `log_events`, its days and months in
    `zone`'s calendar: each read-model table's rows, in the table's columns."""
    def after_log() -> None:
        _zoned(spark, zone)
        _pipeline_levels(spark)

    assert funnel_fold.ZONED_AFTER == funnel_fold.LEVELS_AFTER  # both hooks follow the same step
    run_steps(spark, funnel_fold.PORTABLE_STEPS, funnel_fold.TABLES.values(), {funnel_fold.LEVELS_AFTER: after_log})
    return {table.name: spark.table(funnel_fold.TABLES[table.name]).select(*table.column_names)
            for table in funnel_rows.TABLES}


def _zoned(spark: SparkSession, zone: tzinfo) -> None:
    """`funnel_log` again, with the days and months of `zone` (`set_based.zoned_day_columns`, the DuckDB path's
    expressions transpiled), kept computed as the step was."""
    first, last = spark.sql(to_spark(funnel_fold.LOG_RANGE)).first() or (None, None)
    columns = funnel_fold.zoned_day_columns(zone, first, last) if first is not None else None
    if not columns:
        return
    from pyspark.sql import functions

    frame = spark.table("funnel_log")
    for name, expression in columns.items():
        frame = frame.withColumn(name, functions.expr(to_spark(f"SELECT {expression}").removeprefix("SELECT ")))
    frame.localCheckpoint(eager=True).createOrReplaceTempView("funnel_log")


def _pipeline_levels(spark: SparkSession) -> None:
    """The pipelines' stage lists, folded in Python from their few events (`set_based.pipeline_stages`), as the
    views `funnel_stage_levels` and `funnel_pipelines_rows`: given as Arrow tables, which Spark turns into a
    local relation in the JVM (Python rows would start a Python worker per task: ≈ 5 s of the demo's rebuild
    on a busy machine)."""
    events = [tuple(row) for row in spark.sql(to_spark(funnel_fold.PIPELINE_EVENTS)).collect()]
    pipelines = [row[0] for row in spark.sql(to_spark(funnel_fold.ITEM_PIPELINES)).collect()]
    stages = funnel_fold.pipeline_stages(events, pipelines)
    levels = pa.Table.from_pylist([level._asdict() for level in stages.levels], _LEVELS)
    rows = pa.Table.from_pylist([dict(zip(_PIPELINES.names, row)) for row in stages.rows], _PIPELINES)
    spark.createDataFrame(levels).createOrReplaceTempView("funnel_stage_levels")
    spark.createDataFrame(rows).createOrReplaceTempView("funnel_pipelines_rows")


def rebuild_to_parquet(spark: SparkSession, archive: str, output: str, zone: tzinfo = UTC) -> dict[str, str]:
    """Fold the funnel over the archive (days and months in `zone`) and write each read-model table as Parquet
    under `output/<table>` (replaced); returns where each table went. What `spark-submit` runs on a cluster
    (`main`)."""
    _require_one_shard(spark, archive)
    read_archive(spark, archive)
    written = {}
    for name, frame in fold_funnel(spark, zone).items():
        written[name] = f"{output.rstrip('/')}/{name}"
        frame.write.mode("overwrite").parquet(written[name])
    return written


class ArchiveNotFoldable(ValueError):
    """An archive the funnel's fold cannot read right: none, or one of several shards."""


def _require_one_shard(spark: SparkSession, archive: str) -> None:
    """The fold compares log positions (a pipeline's stage insertions against items' events), which mean
    nothing across shards: an archive of several is refused rather than folded wrong (review of issue 14).
    Read by Hadoop's file system of the session, so that the manifest of an hdfs:// or s3a:// archive is read
    as the files are (Spark's readers skip names starting with `_`)."""
    import json

    from services.bulk.parquet_archive import MANIFEST

    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    path = jvm.org.apache.hadoop.fs.Path(f"{archive.rstrip('/')}/{MANIFEST}")
    files = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    if not files.exists(path):
        raise ArchiveNotFoldable(f"{archive} holds no {MANIFEST}: not an archive `crm export --parquet` wrote")
    stream = files.open(path)
    try:
        shards = len(json.loads(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")).get("heads", ()))
    finally:
        stream.close()
    if shards != 1:
        raise ArchiveNotFoldable(f"{archive} is an archive of {shards} shards: the funnel's fold compares log "
                                 "positions, which only order the events of one log; rebuild a sharded "
                                 "installation's read models with its consumers (`crm projections consume`)")


def main(argv: Sequence[str] | None = None) -> None:
    """`spark-submit services/bulk/spark_rebuild.py ARCHIVE OUTPUT`: the cluster's session (master, memory and
    executors from spark-submit), the funnel's tables under OUTPUT. `--local N`: a local session of N cores.
    `--tz ZONE`: the days and months of that zone (default: CRM_TIME_ZONE's, as the read model's own)."""
    import argparse

    from domain.periods import zone_named
    from services.bulk.spark_session import spark_session
    from services.settings import SettingsError, time_zone_from_environment

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("archive", help="the directory `crm export --parquet` wrote (any URL Spark reads)")
    parser.add_argument("output", help="where the funnel's tables go, one Parquet directory each")
    parser.add_argument("--local", type=int, metavar="N", help="run in a local session of N cores")
    parser.add_argument("--tz", metavar="ZONE", help="the zone whose days and months the tallies count "
                                                      "(an IANA name; default CRM_TIME_ZONE, else UTC)")
    arguments = parser.parse_args(argv)
    try:
        zone = zone_named(arguments.tz) if arguments.tz else time_zone_from_environment()
    except (ValueError, SettingsError) as refused:
        parser.exit(1, f"--tz: {refused}\n")
    spark = spark_session(f"local[{arguments.local}]" if arguments.local else None, "crm-funnel-rebuild")
    try:
        for name, path in rebuild_to_parquet(spark, arguments.archive, arguments.output, zone).items():
            print(f"{name}\t{path}")
    except ArchiveNotFoldable as refused:
        parser.exit(1, f"{refused}\n")  # a sentence and exit 1, not a traceback
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
