"""The bulk rebuild on one machine: the log read once (`log_reader`), folded set-based in an in-process DuckDB
(`projections/<slice>/set_based.py`), each read-model table written once by COPY, keys and indexes built
afterwards (on PostgreSQL beside the current tables, two at once: `table_lanes`), and the tables put in place
with the read model's position (the log head it read) in one transaction.

Why: the handlers' rebuild costs ≈ 46 µs an event to decode domain objects alone and updates rows one by
one; issue 14's prototype folded the funnel ≈ 6–8× faster this way (measured here: 5.6× on 203,700 events,
`python -m tests.benchmarks --only bulk`). Read models
without a set-based fold yet (`FOLDS` names those with one) are rebuilt by their handlers (the
projector's rebuild), so that `crm projections rebuild --bulk` rebuilds everything it is asked to.

`bulk_build(app, store, names, progress)` is the builder the online (blue/green) rebuild plugs in: it fills
the read models' tables through the store it is given and returns the lowest position it brought them to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from dataclasses import dataclass, field, replace

import duckdb
import pyarrow as pa
from eventsourcing.utils import get_topic

from projections.campaigns import set_based as campaigns_fold
from projections.external_ids import set_based as external_ids_fold
from projections.funnel import set_based as funnel_fold
from projections.rates import set_based as rates_fold
from projections.segments import set_based as segments_fold
from projections.tickets import set_based as tickets_fold
from projections.timeline import set_based as timeline_fold
from projections.ports import Cursor
from projections.read_model import ReadModel
from projections.tables import Table
from services.application import CrmApplication
from services.bulk import table_lanes
from services.bulk.log_reader import LogRead, UnsupportedLog, read_log, require_readable
from services.bulk.summed_fold import summed_tables, tickets_summed_tables
from services.projection_runtime.projector import HOLD_POSITIONS, Projector, read_positions
from services.projection_runtime.registry import projector_for
from services.storage.read_model_store import ReadModelStore

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]  # (log position read, log head), as the projector's `on_progress`


@dataclass(frozen=True)
class Fold:
    """A read model's set-based fold (`projections/<slice>/set_based.py`): its steps, the step holding each
    table's rows, work done in Python after a step (the funnel's pipelines), and the steps read once only,
    kept as views (DuckDB runs each inside its reader's query instead of storing its rows: −10 % of the
    funnel's fold CPU on 203,700 events)."""

    steps: tuple[tuple[str, str], ...]
    tables: dict[str, str]
    after: dict[str, Callable[[duckdb.DuckDBPyConnection], None]] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)  # a rule the handlers assert → SQL: the first position breaking it
    zoned_after: str | None = None  # the step after which the days become those of the read model's `zone`
    views: frozenset[str] = frozenset()

    def of(self, model: ReadModel) -> Fold:
        """The fold of `model` as made: the funnel's days are those of its zone (`set_based.zoned_days`)."""
        if self.zoned_after is None:
            return self
        then = self.after.get(self.zoned_after)
        return replace(self, after={**self.after, self.zoned_after: lambda con: _zoned(con, model.zone, then)})  # type: ignore[attr-defined]


class FoldStops(RuntimeError):
    """The log holds an event that breaks a rule the read model's handlers assert: they would stop there (a
    failure `crm projections status` shows), so the bulk path must not write what SQL made of it."""

    def __init__(self, name: str, rule: str, position: int) -> None:
        super().__init__(f"{name}: the event at log position {position} breaks a rule its handlers enforce ({rule}); "
                         "the handlers stop there")
        self.name, self.rule, self.position = name, rule, position


def first_broken_rule(con: duckdb.DuckDBPyConnection, name: str, steps: Fold) -> None:
    """Raise FoldStops for the earliest event breaking one of the fold's checks, after its steps ran."""
    found = [(position, rule) for rule, sql in steps.checks.items()
             if (position := con.execute(sql).fetchall()[0][0]) is not None]  # all: a result left open blocks COPY
    if found:
        position, rule = min(found)
        raise FoldStops(name, rule, position)


def _counted(batches: Iterator[pa.RecordBatch], head: int, progress: Progress) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield batch
        progress(batch.column("position")[-1].as_py(), head)


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")  # rows are keyed: order is the indexes' business
    return con


def fold(con: duckdb.DuckDBPyConnection, steps: Fold, log_events: pa.RecordBatchReader,
         skipped: Sequence[int] = (), upto: int | None = None) -> None:
    """Run a fold's steps over the flat log (a stream, scanned once), but for the `skipped` positions and
    those past `upto`; leaves each table's rows in the step `steps.tables` names."""
    con.register("log_stream", log_events)
    passed_by = [f'"position" NOT IN ({", ".join(map(str, skipped))})'] if skipped else []
    passed_by += [f'"position" <= {int(upto)}'] if upto is not None else []
    where = f" WHERE {' AND '.join(passed_by)}" if passed_by else ""
    con.execute(f"CREATE OR REPLACE TEMP VIEW log_events AS SELECT * FROM log_stream{where}")
    for name, sql in steps.steps:
        con.execute(f"CREATE OR REPLACE TEMP {'VIEW' if name in steps.views else 'TABLE'} {name} AS {sql}")
        if name in steps.after:
            steps.after[name](con)
    con.execute("DROP VIEW log_events")
    con.unregister("log_stream")


def _zoned(con: duckdb.DuckDBPyConnection, zone: Any, then: Callable[[duckdb.DuckDBPyConnection], None] | None) -> None:
    """The funnel's days and months in `zone`, over the instants the log spans (a handful of offset changes,
    not those of business time: for America/New_York ≈ 2,200 until 3000, ≈ 2 s to find and to parse)."""
    first, last = con.execute(funnel_fold.LOG_RANGE).fetchone() or (None, None)
    if first is not None and (statement := funnel_fold.zoned_days(zone, first, last)):
        con.execute(statement)
    if then:
        then(con)


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
    for name, table in (("funnel_stage_levels", levels), ("funnel_pipelines_rows", rows)):
        con.register(f"{name}_arrow", table)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
        con.unregister(f"{name}_arrow")


def write_table(cursor: Cursor, con: duckdb.DuckDBPyConnection, table: Table, step: str, kind: str) -> None:
    """Replace `table` by the rows of DuckDB's `step`: on PostgreSQL created bare, filled by one COPY, then
    its key and indexes built (≈ 3× faster than keeping them up to date row by row); on SQLite emptied and
    filled by one executemany."""
    select = _select(table, step)
    if kind == "postgresql":
        table_lanes.fill(cursor, table, con.sql(select).to_arrow_reader(table_lanes.ROWS_PER_CHUNK))
        return
    cursor.execute(f"DELETE FROM {table.name}")
    cursor.executemany(f"INSERT INTO {table.name} ({', '.join(table.column_names)}) "
                       f"VALUES ({', '.join('?' * len(table.columns))})", con.execute(select).fetchall())


def _rows(con: duckdb.DuckDBPyConnection, table: Table, step: str) -> Callable[[], pa.Table]:
    """The rows of `table` in DuckDB's `step`, made when called (in the caller's thread: DuckDB's connection)."""
    return lambda: con.sql(_select(table, step)).to_arrow_table()


def _select(table: Table, step: str) -> str:
    columns = ", ".join(f'"{name}"' for name in table.column_names)  # quoted: `at` is a keyword to DuckDB
    return f"SELECT {columns} FROM {step}"


def _restart(cursor: Cursor, name: str, head: int) -> None:
    """The read model now stands at `head`, fed by the follower (as `Projector.reset` then a catch-up)."""
    cursor.execute("UPDATE projection_positions SET position = ? WHERE name = ?", (head, name))
    cursor.execute("DELETE FROM projection_failures WHERE name = ?", (name,))
    for table in ("projection_offsets", "projection_partition_failures", "projection_references"):
        cursor.execute(f"DELETE FROM {table} WHERE name = ?", (name,))


def _skipped(store: ReadModelStore, name: str) -> list[int]:
    """The log positions `name` passes by (`crm projections resume --skip`): rebuilds pass them by too."""
    return [position for (position,) in store.query("SELECT position FROM projection_skips WHERE name = ?", [name])]


FOLDS: dict[str, Fold] = {
    "funnel": Fold(funnel_fold.STEPS, funnel_fold.TABLES, {funnel_fold.LEVELS_AFTER: _pipeline_levels},
                   funnel_fold.CHECKS, funnel_fold.ZONED_AFTER, funnel_fold.READ_ONCE),
    "timeline": Fold(timeline_fold.STEPS, timeline_fold.TABLES, checks=timeline_fold.CHECKS),
    "tickets": Fold(tickets_fold.STEPS, tickets_fold.TABLES, {tickets_fold.SUMMED_AFTER: tickets_summed_tables}),
    "external_ids": Fold(external_ids_fold.STEPS, external_ids_fold.TABLES),
    "rates": Fold(rates_fold.STEPS, rates_fold.TABLES),
    "segments": Fold(segments_fold.STEPS, segments_fold.TABLES, checks=segments_fold.CHECKS),
    "campaigns": Fold(campaigns_fold.STEPS, campaigns_fold.TABLES, {campaigns_fold.SUMMED_AFTER: summed_tables},
                      campaigns_fold.CHECKS),
}
"""The read models with a set-based fold; the others are rebuilt by their handlers."""


def rebuild_set_based(app: CrmApplication, store: ReadModelStore, model: ReadModel, progress: Progress,
                      upto: int | None = None) -> int:
    """A read model with a fold (`FOLDS`) rebuilt in bulk up to the log head it read, or to `upto` if that is
    lower (`crm projections verify`: the live read model's position); returns that position (its new one)."""
    con, started = _connect(), time.perf_counter()
    try:
        topics = [get_topic(cls) for cls in model.handlers()]  # the events the fold reads, as the projector's
        with read_log(app.database, topics=topics) as flat:
            head = flat.head if upto is None else min(flat.head, upto)
            stream = LogRead(head, _counted(flat.batches, head, progress)).reader()
            fold(con, FOLDS[model.name].of(model), stream, _skipped(store, model.name), upto)
        first_broken_rule(con, model.name, FOLDS[model.name])
        folded = time.perf_counter()
        steps = FOLDS[model.name].tables
        if store.kind == "postgresql":  # built beside the current tables, two at once (`table_lanes`)
            table_lanes.build_beside(store, [(table, _rows(con, table, steps[table.name])) for table in model.tables])
        with store.transaction() as cursor:
            if store.kind == "postgresql":  # first, as the online swap (else a follower's batch deadlocked it)
                cursor.execute(HOLD_POSITIONS)
                table_lanes.swap_in(cursor, model.tables)
            else:
                for table in model.tables:
                    write_table(cursor, con, table, steps[table.name], store.kind)
            _restart(cursor, model.name, head)
        log.info("%s rebuilt in bulk up to log position %d: read and folded in %.1f s, written in %.1f s",
                 model.name, head, folded - started, time.perf_counter() - folded,
                 extra={"component": "bulk", "read_model": model.name, "position": head})
        progress(head, head)
        return head
    finally:
        con.close()


def require_bulk_readable(app: CrmApplication) -> None:
    """Raise UnsupportedLog for a log the bulk path cannot read (in memory, or sharded), before anything is
    written."""
    if len(getattr(app, "apps", ())) > 1:
        raise UnsupportedLog("the bulk path reads one log; this installation's log is sharded (CRM_SHARD_URLS): "
                             "rebuild it with the handlers (`crm projections rebuild` without --bulk)")
    require_readable(app.database)


def bulk_build(app: CrmApplication, store: ReadModelStore, names: Sequence[str] = (),
               progress: Progress = lambda done, head: None) -> int:
    """Rebuild the named read models (all when none are named): set-based where they have a fold, by their
    handlers otherwise; returns the lowest position they now stand at."""
    require_bulk_readable(app)
    models = projector_for(app, store, names).models  # names checked, tables set up (as the handlers' rebuild)
    handled = [model for model in models if model.name not in FOLDS]
    for model in models:
        if model.name in FOLDS:
            try:
                rebuild_set_based(app, store, model, progress)
            except FoldStops as stops:  # the handlers stop where they stop, and say why (status, metrics)
                log.warning("%s; rebuilding %s with its handlers", stops, model.name,
                            extra={"component": "bulk", "read_model": model.name, "position": stops.position})
                handled.append(model)
    if handled:
        Projector(app, store, handled).rebuild(progress)
    return min(read_positions(store, [m.name for m in models]).values())
