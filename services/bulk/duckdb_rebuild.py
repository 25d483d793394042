"""The bulk rebuild on one machine: the log read once (`log_reader`), folded set-based in an in-process DuckDB
(`projections/<slice>/set_based.py`), each read-model table written once by COPY, keys and indexes built
afterwards, and the read model's position (the log head it read) set in the same transaction.

Why: the handlers' rebuild costs ≈ 46 µs an event to decode domain objects alone and updates rows one by
one; issue 14's prototype folded the funnel ≈ 6–8× faster this way (README: Benchmarks, `bulk`). Read models
without a set-based fold yet (`SET_BASED` names those with one) are rebuilt by their handlers (the
projector's rebuild), so that `crm projections rebuild --bulk` rebuilds everything it is asked to.

`bulk_build(app, store, names, progress)` is the builder the online (blue/green) rebuild plugs in: it fills
the read models' tables through the store it is given and returns the lowest position it brought them to.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from projections.funnel import set_based as funnel_fold
from projections.ports import Cursor
from projections.read_model import ReadModel
from projections.tables import Table
from services.application import CrmApplication
from services.bulk.log_reader import LogRead, read_log
from services.projection_runtime.projector import Projector, read_positions, set_up_tables
from services.projection_runtime.registry import READ_MODELS, UnknownReadModel
from services.storage.read_model_store import ReadModelStore

Progress = Callable[[int, int], None]  # (log position read, log head), as the projector's `on_progress`
SET_BASED = ("funnel",)
"""The read models with a set-based fold; the others are rebuilt by their handlers."""

_CSV = pacsv.WriteOptions(include_header=False, quoting_style="needed")  # strings quoted: "" is '', NULL empty
_ROWS_PER_CHUNK = 100_000  # rows per CSV chunk sent to COPY: a few MB each


def _counted(batches: Iterator[pa.RecordBatch], head: int, progress: Progress) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield batch
        progress(batch.column("position")[-1].as_py(), head)


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")  # rows are keyed: order is the indexes' business
    return con


def fold_funnel(con: duckdb.DuckDBPyConnection, log_events: pa.RecordBatchReader) -> None:
    """Run the funnel's steps over the flat log (a stream, scanned once); leaves each table's rows in the
    step `set_based.TABLES` names (and `funnel_pipelines_rows`)."""
    con.register("log_events", log_events)
    for name, sql in funnel_fold.STEPS:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
        if name == funnel_fold.LEVELS_AFTER:
            _pipeline_levels(con)
    con.unregister("log_events")


def _pipeline_levels(con: duckdb.DuckDBPyConnection) -> None:
    """The pipelines' stage lists, folded in Python from their few events (`set_based.pipeline_stages`)."""
    events = con.execute(funnel_fold.PIPELINE_EVENTS).fetchall()
    pipelines = [key for (key,) in con.execute(funnel_fold.ITEM_PIPELINES).fetchall()]
    stages = funnel_fold.pipeline_stages(events, pipelines)
    levels = pa.Table.from_pylist([level._asdict() for level in stages.levels], pa.schema(
        [("pipeline", pa.string()), ("stage", pa.string()), ("level", pa.int64()), ("since", pa.int64())]))
    rows = pa.Table.from_pylist([dict(zip(("pipeline_id", "pipeline", "stages"), row)) for row in stages.rows],
                                pa.schema([("pipeline_id", pa.string()), ("pipeline", pa.string()),
                                           ("stages", pa.string())]))
    con.execute("CREATE OR REPLACE TEMP TABLE funnel_stage_levels AS SELECT * FROM levels")
    con.execute("CREATE OR REPLACE TEMP TABLE funnel_pipelines_rows AS SELECT * FROM rows")


def _csv_chunks(reader: pa.RecordBatchReader) -> Iterator[bytes]:
    for batch in reader:
        if batch.num_rows:
            buffer = io.BytesIO()
            pacsv.write_csv(batch, buffer, _CSV)
            yield buffer.getvalue()


def write_table(cursor: Cursor, con: duckdb.DuckDBPyConnection, table: Table, step: str, kind: str) -> None:
    """Replace `table` by the rows of DuckDB's `step`: on PostgreSQL created bare, filled by one COPY, then
    its key and indexes built (≈ 3× faster than keeping them up to date row by row); on SQLite emptied and
    filled by one executemany."""
    columns = ", ".join(f'"{name}"' for name in table.column_names)  # quoted: `at` is a keyword to DuckDB
    select = f"SELECT {columns} FROM {step}"
    if kind == "postgresql":
        cursor.execute(f"DROP TABLE IF EXISTS {table.name}")
        cursor.execute(f"CREATE TABLE {table.name} ({', '.join(f'{n} {t}' for n, t in table.columns)})")
        cursor.copy_csv(table, _csv_chunks(con.sql(select).to_arrow_reader(_ROWS_PER_CHUNK)))  # type: ignore[attr-defined]
        cursor.execute(f"ALTER TABLE {table.name} ADD PRIMARY KEY ({', '.join(table.key)})")
        for statement in table.ddl()[1:]:  # the indexes, named as the projector names them
            cursor.execute(statement)
        return
    cursor.execute(f"DELETE FROM {table.name}")
    cursor.executemany(f"INSERT INTO {table.name} ({', '.join(table.column_names)}) "
                       f"VALUES ({', '.join('?' * len(table.columns))})", con.execute(select).fetchall())


def _restart(cursor: Cursor, name: str, head: int) -> None:
    """The read model now stands at `head`, fed by the follower (as `Projector.reset` then a catch-up)."""
    cursor.execute("UPDATE projection_positions SET position = ? WHERE name = ?", (head, name))
    cursor.execute("DELETE FROM projection_failures WHERE name = ?", (name,))
    for table in ("projection_offsets", "projection_partition_failures", "projection_references"):
        cursor.execute(f"DELETE FROM {table} WHERE name = ?", (name,))


def _skipped(store: ReadModelStore, name: str) -> list[int]:
    """The log positions `name` passes by (`crm projections resume --skip`): rebuilds pass them by too."""
    return [position for (position,) in store.query("SELECT position FROM projection_skips WHERE name = ?", [name])]


def rebuild_funnel(app: CrmApplication, store: ReadModelStore, model: ReadModel, progress: Progress) -> int:
    """The funnel rebuilt in bulk; returns the log head it read (its new position)."""
    con = _connect()
    try:
        with read_log(app.database) as log:
            skipped = _skipped(store, model.name)
            stream = LogRead(log.head, _counted(log.batches, log.head, progress)).reader()
            if skipped:
                con.register("log_all", stream)
                stream = con.execute('SELECT * FROM log_all WHERE "position" NOT IN '
                                     
                                     f"({', '.join(map(str, skipped))})").to_arrow_reader()
            fold_funnel(con, stream)
            head = log.head
        with store.transaction() as cursor:
            for table in model.tables:
                write_table(cursor, con, table, funnel_fold.TABLES[table.name], store.kind)
            _restart(cursor, model.name, head)
        progress(head, head)
        return head
    finally:
        con.close()


def _models(names: Sequence[str]) -> list[ReadModel]:
    unknown = [n for n in names if n not in READ_MODELS]
    if unknown:
        raise UnknownReadModel(f"unknown read model(s) {', '.join(unknown)}; known: {', '.join(READ_MODELS)}")
    return [READ_MODELS[n]() for n in (names or READ_MODELS)]


def bulk_build(app: CrmApplication, store: ReadModelStore, names: Sequence[str] = (),
               progress: Progress = lambda done, head: None) -> int:
    """Rebuild the named read models (all when none are named): set-based where they have a fold, by their
    handlers otherwise; returns the lowest position they now stand at."""
    models = _models(names)
    set_up_tables(store, models)
    for model in models:
        if model.name == "funnel":
            rebuild_funnel(app, store, model, progress)
    handled = [model for model in models if model.name not in SET_BASED]
    if handled:
        Projector(app, store, handled).rebuild(progress)
    return min(read_positions(store, [m.name for m in models]).values())
