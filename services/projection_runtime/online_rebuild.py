"""Blue/green read models: `crm projections rebuild --online` builds the next version of read models beside the
current one, which keeps answering (and being fed by the live follower), and swaps them in one transaction.

PostgreSQL: the new version is built in the schema `<own schema>_green` (`crm db migrate` makes it, owned by the
application role) by a connection whose search_path is that schema alone, so the read models' own SQL, with its
unqualified table names, writes the new tables there — with their own positions, failures and skips (copied from
the current version: rebuilds pass skipped events by). Any builder does (`Builder`: the handlers by default, the
bulk path with `--bulk`), then the handlers catch it up to the head. The swap, in one transaction on the
current version's connection:

1. `LOCK TABLE projection_positions IN SHARE ROW EXCLUSIVE MODE`: a follower batch in progress commits first;
   the next one waits at its guarded position update (`advance_position`, always its first write) until the
   swap commits, then finds the position moved and rolls back (ProjectionRace, retried from the new position),
   or, when the new version ended exactly where the old one was, applies the next events to the new tables —
   either way no event is applied twice or skipped: a position always describes the tables it is swapped with.
2. The new version catches up to the head once more (nothing can move the current one now), so positions never
   go back: a client waiting for its own write never waits again.
3. For each table: `DROP TABLE <own>.t` (the old version), `ALTER TABLE <green>.t SET SCHEMA <own>` (indexes move
   with it); the positions, failures and schema fingerprints become the new version's. PostgreSQL's DDL is
   transactional, so readers see the old tables until the commit and the new ones after it, never neither.

Readers holding a table (a long report) would hold the swap, and every reader queued behind the swap's lock:
`lock_timeout` (1 s) bounds that stall; the swap then rolls back, the new version catches up and it tries again
(up to 30 times). One online rebuild at a time (an advisory lock; a second one is refused at once). A crash
leaves the green schema's tables behind, never the current ones touched: the next online rebuild drops them
first. Read models fed by a consumer group (`projection_offsets`) are refused: the swap would hand them to a
position the consumers do not keep (reset them and let the consumers rebuild, or `rebuild` moves them back to
the follower).

SQLite (one file, one writer at a time): the new version is built in a file beside the log (`<file>.green`);
the swap copies its tables into the log's file in one write transaction (readers, in WAL mode, see the old
rows until it commits); writers wait for the copy (≈ 1 s per 300k rows).
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from projections.ports import Cursor
from projections.tables import Table
from services.application import CrmApplication
from services.projection_runtime.projector import (HOLD_POSITIONS, Projector, require_no_partition_feeder,
                                                   schema_fingerprint, set_up_tables)
from services.projection_runtime.rebuild_record import ONLINE, record_online_progress, recorded_rebuild
from services.projection_runtime.registry import READ_MODELS, UnknownReadModel, projector_for
from services.settings import database_from_url
from services.storage.read_model_store import GREEN_SUFFIX, ReadModelStore
from services.storage.schema_lock import advisory_lock

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]  # (log position applied, log head)
Builder = Callable[[CrmApplication, ReadModelStore, Sequence[str], Progress], int]
"""Builds the named read models from the log into `store` (bound to the new version's tables, which exist and
stand at position 0) and returns the log position they now hold. `services.bulk`'s `bulk_build` has this shape."""

ONLINE_LOCK = 0x43524D5F4F4E4C4E  # a PostgreSQL advisory lock key ("CRM_ONLN"): one online rebuild at a time
SWAP_LOCK_TIMEOUT = "1s"  # how long readers may be held behind the swap's locks before it gives way
SWAP_ATTEMPTS = 30
COPIED = ("projection_positions", "projection_failures")  # what the swap takes from the new version, per name


BUSY = "another online rebuild is running on this database (or an offline rebuild or reset); wait for it to end"
OFFLINE_REFUSED = ("an online rebuild is running on this database (`crm projections rebuild --online`, or `crm "
                   "serve` building a read model whose tables changed); nothing was changed: wait for it to end "
                   "(`crm projections status`, /metrics crm_rebuild_progress)")


class OnlineRebuildRefused(RuntimeError):
    """An online rebuild cannot start or swap; the current read models are as they were."""


class OnlineRebuildBusy(OnlineRebuildRefused):
    """Another rebuild holds the database's online-rebuild lock (`exclusive`)."""


@contextmanager
def exclusive(app: CrmApplication, busy: str = OFFLINE_REFUSED) -> Iterator[None]:
    """Hold the database's online-rebuild lock for the block, or raise OnlineRebuildBusy(`busy`) at once.
    An online rebuild holds it for its whole build; an offline `rebuild`/`reset` too, so that neither empties
    tables the other is building from or swapping (an in-memory database has one process: nothing to hold).
    PostgreSQL: an advisory lock on its own connection; SQLite: `flock` on `<file>.green.lock`. The server or
    the kernel releases either when the process dies."""
    if app.database.kind == "postgresql":
        import psycopg

        with psycopg.connect(app.database.url, autocommit=True) as connection:
            if not connection.execute("SELECT pg_try_advisory_lock(%s)", (ONLINE_LOCK,)).fetchone()[0]:
                raise OnlineRebuildBusy(busy)
            yield
    elif app.database.sqlite_path:
        with open(f"{app.database.sqlite_path}{GREEN_SUFFIX.replace('_', '.')}.lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OnlineRebuildBusy(busy) from None
            yield
    else:
        yield


def handler_build(app: CrmApplication, store: ReadModelStore, names: Sequence[str], progress: Progress) -> int:
    """The default builder: the read models' own handlers (the Projector), batch by batch."""
    projector = projector_for(app, store, names)
    projector.catch_up(progress, strict=False)
    return min(projector.positions().values())


def rebuild_online(app: CrmApplication, store: ReadModelStore, names: Sequence[str] = (),
                   builder: Builder = handler_build, on_progress: Progress = lambda done, head: None) -> int:
    """Build `names` (all when none) anew beside the current version and swap; returns the position swapped in."""
    if unknown := [name for name in names if name not in READ_MODELS]:
        raise UnknownReadModel(f"unknown read model(s) {', '.join(unknown)}; known: {', '.join(READ_MODELS)}")
    names = list(names or READ_MODELS)
    with advisory_lock(app.database):  # not the read models' own tables: CREATE INDEX IF NOT EXISTS would lock
        set_up_tables(store, [])       # them against the follower (positions, failures, schemas only)
    place = _GreenSchema(app, store) if store.kind == "postgresql" else _GreenFile(app, store)
    with exclusive(app, BUSY):
        with store.transaction() as cursor:
            require_no_partition_feeder(cursor, names)
        # recorded once the lock is held, whoever builds (the CLI, or `crm serve` after a schema change):
        # /metrics crm_rebuild_progress and `crm projections status` show it, and a refused second build
        # does not overwrite the running one's record
        with recorded_rebuild(store, names, app.event_count()):
            return _cleared_build(app, store, names, builder, on_progress, place)


def _cleared_build(app: CrmApplication, store: ReadModelStore, names: list[str], builder: Builder,
                   on_progress: Progress, place: _GreenSchema | _GreenFile) -> int:
    place.clear()  # a crashed build's leftovers
    green_store = place.open()
    try:
        return _build_and_swap(app, store, green_store, names, builder, on_progress, place)
    finally:
        green_store.close()
        place.clear()
        record_online_progress(store, names, None)


def _build_and_swap(app: CrmApplication, store: ReadModelStore, green_store: ReadModelStore, names: list[str],
                    builder: Builder, on_progress: Progress, place: _GreenSchema | _GreenFile) -> int:
    projector = projector_for(app, green_store, names)  # creates the new version's tables, at position 0
    skips = store.query(f"SELECT * FROM projection_skips WHERE name IN ({_marks(names)})", names)
    with green_store.transaction() as cursor:
        cursor.executemany(f"INSERT INTO projection_skips VALUES ({_marks(skips[0])})", skips) if skips else None

    def report(done: int, head: int) -> None:
        on_progress(done, head)
        record_online_progress(store, names, done)

    _built_to(green_store, names, builder(app, green_store, names, report))
    for attempt in range(1, SWAP_ATTEMPTS + 1):
        projector.catch_up(report, strict=False)  # near the head, so that the swap's own catch-up is short
        try:
            with place.attached():
                return _swap(store, projector, names, place, on_progress)  # no progress rows: it deletes them
        except (*_lock_not_available(), _Behind) as busy:
            log.warning("online rebuild: no swap (attempt %d of %d): %s; catching up and trying again", attempt,
                        SWAP_ATTEMPTS, busy,
                        extra={"component": "online rebuild", "action": "retry_swap"})
    raise OnlineRebuildRefused(f"the swap could not take its locks in {SWAP_ATTEMPTS} attempts; the current "
                               "read models are unchanged: try again when fewer long reports run")


def _built_to(store: ReadModelStore, names: Sequence[str], position: int) -> None:
    """A builder that wrote no positions (a bulk one) leaves them at 0: they hold what it returned."""
    with store.transaction() as cursor:
        cursor.execute(f"UPDATE projection_positions SET position = ? WHERE position < ? AND name IN ({_marks(names)})",
                       [position, position, *names])


def _swap(store: ReadModelStore, projector: Projector, names: list[str], place: _GreenSchema | _GreenFile,
          report: Progress) -> int:
    """One transaction: the new version's tables, positions and failures in place of the current ones."""
    with store.transaction() as cursor:
        if store.kind == "postgresql":
            cursor.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
            cursor.execute(HOLD_POSITIONS)
        require_no_partition_feeder(cursor, names)  # a consumer group started meanwhile
        if place.catches_up_inside:
            projector.catch_up(report, strict=False)  # the current version cannot move now
        new = place.prefix
        current, built = _positions(cursor, names, ""), _positions(cursor, names, new)
        if behind := [name for name in names if built[name] < current.get(name, 0)]:
            if stopped := [name for name in behind if name in projector.failures()]:
                raise OnlineRebuildRefused(_stopped_message(projector, stopped))
            raise _Behind(f"{', '.join(behind)} moved on while the new version caught up")
        place.move(cursor, [table for model in projector.models for table in model.tables])
        for table in COPIED:
            cursor.execute(f"DELETE FROM {table} WHERE name IN ({_marks(names)})", names)
            cursor.execute(f"INSERT INTO {table} SELECT * FROM {new}{table} WHERE name IN ({_marks(names)})", names)
        cursor.executemany("INSERT INTO projection_schemas (name, fingerprint) VALUES (?, ?) ON CONFLICT (name) "
                           "DO UPDATE SET fingerprint = excluded.fingerprint",
                           [(model.name, schema_fingerprint(model)) for model in projector.models])
        cursor.execute(f"DELETE FROM {ONLINE.name} WHERE name IN ({_marks(names)})", names)
    log.info("online rebuild: swapped in %s at log position %d", ", ".join(names), min(built.values()),
             extra={"component": "online rebuild", "action": "swap", "position": min(built.values())})
    return min(built.values())


class _Behind(RuntimeError):
    """The current version moved past the new one after its catch-up (SQLite): catch up and swap again."""


def _stopped_message(projector: Projector, stopped: list[str]) -> str:
    failures = projector.failures()
    why = "; ".join(failures[name].message() for name in stopped)
    return (f"the new version stops where the current one does not ({why}); the current read models are unchanged "
            "and still answer")


def _positions(cursor: Cursor, names: Sequence[str], schema: str) -> dict[str, int]:
    cursor.execute(f"SELECT name, position FROM {schema}projection_positions WHERE name IN ({_marks(names)})",
                   list(names))
    return dict(cursor.fetchall())


class _GreenSchema:
    """PostgreSQL: the new version is built in schema `<own>_green` and moved into `<own>` by the swap."""

    def __init__(self, app: CrmApplication, store: ReadModelStore) -> None:
        self.app, self.store = app, store
        self.own = store.query("SELECT current_schema()")[0][0]
        self.green = self.own + GREEN_SUFFIX
        self.prefix = f"{_quoted(self.green)}."  # the new version's tables, seen from the current one's connection
        self.catches_up_inside = True  # the new version's connection writes while the swap holds the positions
        usable = store.query("SELECT has_schema_privilege(?, 'CREATE') FROM pg_namespace WHERE nspname = ?",
                             (self.green, self.green))
        if not (usable and usable[0][0]):
            raise OnlineRebuildRefused(f"schema {self.green}, where an online rebuild builds the new version, is "
                                       "missing or not the application's: run `crm db migrate` as the owner role")

    def clear(self) -> None:
        tables = [t for (t,) in self.store.query("SELECT tablename FROM pg_tables WHERE schemaname = ?", (self.green,))]
        if tables:
            with self.store.transaction() as cursor:
                cursor.execute("DROP TABLE IF EXISTS " + ", ".join(self.prefix + _quoted(t) for t in tables))

    def open(self) -> ReadModelStore:
        return ReadModelStore(self.app.database, schema=self.green)

    @contextmanager
    def attached(self) -> Iterator[None]:
        yield  # one database: the current connection sees the green schema already

    def move(self, cursor: Cursor, tables: Sequence[Table]) -> None:
        """Drop each current table and move the new one in (its indexes and key move with it), keeping the
        privileges other roles (a BI reader) had on the current tables."""
        own, names = _quoted(self.own), [table.name for table in tables]
        cursor.execute(f"SELECT c.relname FROM pg_class c WHERE c.relnamespace = {_literal(self.own)}::regnamespace "
                       f"AND c.relkind = 'r' AND c.relname IN ({_marks(names)})", names)
        if present := [name for (name,) in cursor.fetchall()]:
            # All at once, in one wait bounded by lock_timeout: taken one DROP at a time, readers queued behind
            # the tables already locked waited up to 1 s per table (over 40 tables for every read model), and a
            # report joining two tables in the other order could deadlock with the swap.
            cursor.execute("LOCK TABLE " + ", ".join(f"{own}.{name}" for name in present) + " IN ACCESS EXCLUSIVE MODE")
        grants = _grants(cursor, self.own, present)
        for name in names:
            cursor.execute(f"DROP TABLE IF EXISTS {own}.{name}")
            cursor.execute(f"ALTER TABLE {self.prefix}{name} SET SCHEMA {own}")
        for statement in grants:
            cursor.execute(statement)


class _GreenFile:
    """SQLite: the new version is built in `<log file>.green` and copied into the log's file by the swap."""

    prefix = "green."
    catches_up_inside = False  # the swap's write lock covers the attached file too: it could not be written

    def __init__(self, app: CrmApplication, store: ReadModelStore) -> None:
        if not app.database.sqlite_path:
            raise OnlineRebuildRefused("an in-memory database has no second place to build in: rebuild it "
                                       "offline (`crm projections rebuild` without --online)")
        self.store, self.path = store, f"{app.database.sqlite_path}{GREEN_SUFFIX.replace('_', '.')}"

    def clear(self) -> None:
        for leftover in (self.path, f"{self.path}-wal", f"{self.path}-shm"):
            if os.path.exists(leftover):
                os.remove(leftover)

    def open(self) -> ReadModelStore:
        return ReadModelStore(database_from_url(f"sqlite:///{self.path}"))

    @contextmanager
    def attached(self) -> Iterator[None]:
        self.store.query("ATTACH DATABASE ? AS green", (self.path,))  # outside a transaction, as SQLite wants
        try:
            yield
        finally:
            self.store.query("DETACH DATABASE green")

    def move(self, cursor: Cursor, tables: Sequence[Table]) -> None:
        """Replace each current table by a copy of the new one (new DDL too: the version may have changed it)."""
        for table in tables:
            cursor.execute(f"DROP TABLE IF EXISTS main.{table.name}")
            for statement in table.ddl():
                cursor.execute(statement)
            cursor.execute(f"INSERT INTO main.{table.name} SELECT * FROM green.{table.name}")


def _lock_not_available() -> tuple[type[Exception], ...]:
    """A lock wait ran out (`lock_timeout`), or the swap was a deadlock's victim (a report holding one table
    while waiting for another the swap holds): roll back and try again. Never on SQLite (one writer)."""
    import psycopg

    return psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected


_GRANTS = """SELECT c.relname, COALESCE(quote_ident(r.rolname), 'PUBLIC'), a.privilege_type, a.is_grantable
FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
WHERE c.relnamespace = {schema}::regnamespace AND a.grantee <> c.relowner AND c.relname IN ({names})"""


def _grants(cursor: Cursor, schema: str, tables: Sequence[str]) -> list[str]:
    """GRANT statements giving the new tables what other roles may do with the current ones (the new tables
    are the application's, made without them)."""
    if not tables:
        return []
    cursor.execute(_GRANTS.format(schema=_literal(schema), names=_marks(tables)), list(tables))
    return [f"GRANT {privilege} ON {_quoted(schema)}.{table} TO {grantee}{' WITH GRANT OPTION' if grantable else ''}"
            for table, grantee, privilege, grantable in cursor.fetchall()]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _marks(names: Sequence[Any]) -> str:
    return ", ".join("?" * len(names))


def private_place(app: CrmApplication, store: ReadModelStore) -> _GreenSchema | _GreenFile:
    """Where a version of the read models is built beside the current one (the green schema or file), for a
    caller other than the swap: `crm projections verify` builds its copy there, under the same guard."""
    return _GreenSchema(app, store) if store.kind == "postgresql" else _GreenFile(app, store)
