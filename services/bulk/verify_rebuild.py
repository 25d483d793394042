"""`crm projections verify`: the read models rebuilt by the bulk path in a private place, diffed row for row
against the live ones of a running database — equality of the two paths checked where it matters, on the
production log, not only on the random histories of the tests.

Why one position, and which: the live follower keeps running, so the live tables move on while the copy is
built. The live read models are therefore taken as they stand at one instant — their positions and their rows
read in one snapshot (PostgreSQL: one REPEATABLE READ transaction that copies each table, `CREATE TABLE … AS`,
into the private schema; SQLite: read into memory under the one write lock) — and the copy is folded from the
log up to exactly those positions (`rebuild_set_based(upto=…)`; read models without a set-based fold by their
handlers, through an application whose log head is that position). Nothing is paused and nothing waits for the
follower; the price is one copy of the live tables (PostgreSQL copies ≈ 1M rows/s, far less than the rebuild).

The private place and the one-at-a-time guard are the online rebuild's (`private_place`): the green schema or
file, cleared before and always after; a verify and an online rebuild exclude each other. The diff, per table,
keyed by its primary key: PostgreSQL a FULL OUTER JOIN in the database (JSON columns compared as jsonb: key order
is no difference), SQLite plain Python; rows no query reads (`Table.ignored_rows`) are left out on both sides.
Nothing live is written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from projections.ports import Cursor
from projections.read_model import ReadModel
from projections.tables import Table
from services.application import CrmApplication
from services.bulk.duckdb_rebuild import FOLDS, FoldStops, rebuild_set_based, require_bulk_readable
from services.projection_runtime.online_rebuild import BUSY, exclusive, private_place
from services.projection_runtime.projector import Projector, read_positions
from services.projection_runtime.registry import READ_MODELS, UnknownReadModel, projector_for
from services.storage.read_model_store import ReadModelStore

Progress = Callable[[int, int], None]
EXAMPLES = 5  # rows shown per kind of difference and table: enough to find the rule, not a dump
LIVE = "live__"  # the prefix of the live tables' snapshot copies in the private schema (PostgreSQL)

log = logging.getLogger(__name__)


class VerifyRefused(RuntimeError):
    """The verification cannot run (nothing was built or written): a sentence saying why."""


@dataclass
class TableDiff:
    """One table: row counts both sides, and the rows only live, only rebuilt, or differing under one key."""

    table: str
    live_rows: int
    rebuilt_rows: int
    only_live: int = 0
    only_rebuilt: int = 0
    differing: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)  # {kind, key, live, rebuilt}

    @property
    def equal(self) -> bool:
        return not (self.only_live or self.only_rebuilt or self.differing)


@dataclass
class ModelDiff:
    name: str
    position: int  # the live read model's, the copy was built up to it
    rebuilt_position: int  # where the copy stands: lower if its handlers stopped at an event
    tables: list[TableDiff]

    @property
    def equal(self) -> bool:
        return self.position == self.rebuilt_position and all(table.equal for table in self.tables)


@dataclass
class Verification:
    read_models: list[ModelDiff]

    @property
    def equal(self) -> bool:
        return all(model.equal for model in self.read_models)

    def as_json(self) -> dict[str, Any]:
        return {"equal": self.equal, "read_models": [
            {**asdict(model), "equal": model.equal,
             "tables": [{**asdict(table), "equal": table.equal} for table in model.tables]}
            for model in self.read_models]}


def default_names() -> list[str]:
    """The read models the bulk path folds set-based: the others' copy would be their own handlers again."""
    return [name for name in READ_MODELS if name in FOLDS]


def verify(app: CrmApplication, store: ReadModelStore, names: Sequence[str] = (),
           progress: Progress = lambda done, head: None) -> Verification:
    """Rebuild `names` (default: `default_names()`) in bulk in the private place at the live positions, diff."""
    if unknown := [name for name in names if name not in READ_MODELS]:
        raise UnknownReadModel(f"unknown read model(s) {', '.join(unknown)}; known: {', '.join(READ_MODELS)}")
    require_bulk_readable(app)
    models = [READ_MODELS[name]() for name in (names or default_names())]
    place = private_place(app, store)
    with exclusive(app, BUSY):
        place.clear()  # a crashed build's or verify's leftovers
        private = place.open()
        try:
            if store.kind == "postgresql":
                positions = _copy_live(store, place.prefix, models)
                _build(app, store, private, models, positions, progress)
                return Verification([_model_diff(private, model, positions, _diff_in_database) for model in models])
            positions, live = _read_live(store, models)
            _build(app, store, private, models, positions, progress)
            return Verification([_model_diff(private, model, positions, _diff_in_python(live)) for model in models])
        finally:
            private.close()
            place.clear()


def _live_positions(cursor: Cursor, models: Sequence[ReadModel]) -> dict[str, int]:
    """The live positions, or VerifyRefused for a read model never built here or fed by a consumer group."""
    names = [model.name for model in models]
    marks = ", ".join("?" * len(names))
    cursor.execute(f"SELECT DISTINCT name FROM projection_offsets WHERE name IN ({marks})", names)
    if fed := sorted(name for (name,) in cursor.fetchall()):
        raise VerifyRefused(f"{', '.join(fed)} are fed per partition by `crm projections consume`: they stand at "
                            "no single log position to rebuild up to")
    cursor.execute(f"SELECT name, position FROM projection_positions WHERE name IN ({marks})", names)
    positions = dict(cursor.fetchall())
    if missing := [name for name in names if name not in positions]:
        raise VerifyRefused(f"{', '.join(missing)} were never built in this database: nothing to verify")
    return positions


def _copy_live(store: ReadModelStore, prefix: str, models: Sequence[ReadModel]) -> dict[str, int]:
    """PostgreSQL: the live positions and a copy of every live table into the private schema, one snapshot."""
    with store.transaction() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # positions and rows: one instant
        positions = _live_positions(cursor, models)
        for table in (table for model in models for table in model.tables):
            cursor.execute(f"CREATE TABLE {prefix}{LIVE}{table.name} AS SELECT * FROM {table.name}{_kept(table)}")
    return positions


LiveRows = dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]  # table → key → row


def _read_live(store: ReadModelStore, models: Sequence[ReadModel]) -> tuple[dict[str, int], LiveRows]:
    """SQLite: the live positions and rows, read under the one write lock (the follower waits meanwhile)."""
    with store.transaction() as cursor:
        positions = _live_positions(cursor, models)
        return positions, {table.name: _keyed(cursor, table) for model in models for table in model.tables}


def _keyed(cursor: Cursor, table: Table) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The table's rows by key, JSON columns parsed (key order and spacing are no difference)."""
    cursor.execute(f"SELECT {', '.join(table.column_names)} FROM {table.name}{_kept(table)}")
    json_at = [table.column_names.index(name) for name in table.json_columns]
    key_at = [table.column_names.index(name) for name in table.key]
    rows = {}
    for values in cursor.fetchall():
        row = list(values)
        for i in json_at:
            row[i] = json.loads(row[i]) if isinstance(row[i], str) else row[i]
        rows[tuple(row[i] for i in key_at)] = tuple(row)
    return rows


class _UpTo:
    """The application with its log seen up to `position`: a projector over it stops there (its head)."""

    def __init__(self, app: CrmApplication, position: int) -> None:
        self._app, self._position = app, position

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)

    def event_count(self) -> int:
        return min(self._app.event_count(), self._position)


def _build(app: CrmApplication, store: ReadModelStore, private: ReadModelStore, models: Sequence[ReadModel],
           positions: dict[str, int], progress: Progress) -> None:
    """Each read model built in the private place up to its live position: set-based where it has a fold,
    by its handlers otherwise; the events the live one passes by (`resume --skip`) passed by too."""
    names = [model.name for model in models]
    projector_for(app, private, names)  # the private tables, at position 0
    marks = ", ".join("?" * len(names))
    if skips := store.query(f"SELECT * FROM projection_skips WHERE name IN ({marks})", names):
        with private.transaction() as cursor:
            cursor.executemany(f"INSERT INTO projection_skips VALUES ({', '.join('?' * len(skips[0]))})", skips)
    for model in models:
        if model.name in FOLDS:
            try:
                rebuild_set_based(app, private, model, progress, upto=positions[model.name])
                continue
            except FoldStops as stops:  # as `crm projections rebuild --bulk`: its handlers build it
                log.warning("%s; building %s with its handlers", stops, model.name)
        Projector(_UpTo(app, positions[model.name]), private, [model]).catch_up(progress, strict=False)  # type: ignore[arg-type]


Differ = Callable[[ReadModelStore, Table], TableDiff]


def _model_diff(private: ReadModelStore, model: ReadModel, positions: dict[str, int], differ: Differ) -> ModelDiff:
    rebuilt = read_positions(private, [model.name])[model.name]
    return ModelDiff(model.name, positions[model.name], rebuilt, [differ(private, table) for table in model.tables])


def _kept(table: Table) -> str:
    """The WHERE clause leaving out the rows no query reads (`Table.ignored_rows`: the segments' superseded
    intervals, which the handlers leave depending on how their batches fell): not a difference."""
    return f" WHERE NOT ({table.ignored_rows})" if table.ignored_rows else ""


def _quoted(name: str) -> str:
    return f'"{name}"'


def _diff_in_database(private: ReadModelStore, table: Table) -> TableDiff:
    """PostgreSQL: the live copy FULL OUTER JOIN the rebuilt table on the key; counts, and a few examples."""
    key = [_quoted(column) for column in table.key]
    cast = {name: "::jsonb" for name in table.json_columns}
    live_row = ", ".join(f"l.{_quoted(c)}{cast.get(c, '')}" for c in table.column_names)
    rebuilt_row = ", ".join(f"r.{_quoted(c)}{cast.get(c, '')}" for c in table.column_names)
    live_missing, rebuilt_missing = f"l.{key[0]} IS NULL", f"r.{key[0]} IS NULL"  # key columns are never NULL
    kind = (f"CASE WHEN {rebuilt_missing} THEN 'only_live' WHEN {live_missing} THEN 'only_rebuilt' "
            "ELSE 'differing' END")
    joined = (f"{LIVE}{table.name} l FULL OUTER JOIN (SELECT * FROM {table.name}{_kept(table)}) r ON "
              + " AND ".join(f"l.{column} = r.{column}" for column in key))
    different = f"{live_missing} OR {rebuilt_missing} OR ROW({live_row}) IS DISTINCT FROM ROW({rebuilt_row})"
    order = ", ".join(f"coalesce(l.{column}, r.{column})" for column in key)
    rows = private.query(
        f"SELECT kind, total, live, rebuilt FROM (SELECT {kind} AS kind, to_jsonb(l) AS live, to_jsonb(r) AS rebuilt, "
        f"count(*) OVER (PARTITION BY {kind}) AS total, row_number() OVER (PARTITION BY {kind} ORDER BY {order}) AS n "
        f"FROM {joined} WHERE {different}) d WHERE n <= {EXAMPLES} ORDER BY kind, n")
    (live_rows,), = private.query(f"SELECT count(*) FROM {LIVE}{table.name}")
    (rebuilt_rows,), = private.query(f"SELECT count(*) FROM {table.name}{_kept(table)}")
    diff = TableDiff(table.name, live_rows, rebuilt_rows)
    for kind_name, total, live, rebuilt in rows:
        setattr(diff, kind_name, total)
        one = live if kind_name != "only_rebuilt" else rebuilt
        diff.examples.append({"kind": kind_name, "key": {c: one[c] for c in table.key},
                              "live": live if kind_name != "only_rebuilt" else None,
                              "rebuilt": rebuilt if kind_name != "only_live" else None})
    return diff


def _diff_in_python(live: LiveRows) -> Differ:
    """SQLite: the live rows read at the start against the rebuilt ones, key by key."""
    def differ(private: ReadModelStore, table: Table) -> TableDiff:
        with private.transaction() as cursor:
            rebuilt = _keyed(cursor, table)
        before = live[table.name]
        diff = TableDiff(table.name, len(before), len(rebuilt))
        kinds = {"only_live": sorted(before.keys() - rebuilt.keys(), key=repr),
                 "only_rebuilt": sorted(rebuilt.keys() - before.keys(), key=repr),
                 "differing": sorted((k for k in before.keys() & rebuilt.keys() if before[k] != rebuilt[k]), key=repr)}
        for kind, keys in kinds.items():
            setattr(diff, kind, len(keys))
            diff.examples += [{"kind": kind, "key": dict(zip(table.key, key)),
                               "live": _as_dict(table, before.get(key)), "rebuilt": _as_dict(table, rebuilt.get(key))}
                              for key in keys[:EXAMPLES]]
        return diff
    return differ


def _as_dict(table: Table, row: tuple[Any, ...] | None) -> dict[str, Any] | None:
    return dict(zip(table.column_names, row)) if row is not None else None
