"""The database connection read models are written to and queried from: the log's own database.

One small adapter over sqlite3 and psycopg, so projections write portable SQL with `?` placeholders.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from projections.ports import Cursor
from projections.tables import Table
from services.settings import Database, database_from_url

if TYPE_CHECKING:  # imported where a PostgreSQL store connects: ≈ 0.1 s an SQLite query need not pay
    import psycopg


CONNECT_TIMEOUT = 2  # seconds; a database that does not answer by then counts as down
DEADLOCK_RETRIES = 3  # a read aborted as a deadlock's victim (an online swap's locks) is asked again
COPY_FROM_ROWS = 100  # upserts of at least this many rows go through COPY
GREEN_SUFFIX = "_green"  # the schema an online rebuild builds in: the application's own schema's name + this
POSTGRES_TYPES = {"TEXT": "text", "BIGINT": "int8", "INTEGER": "int4"}  # column types → binary COPY types


class _Cursor:
    """A DB-API cursor with `?` placeholders (sqlite3's own) that also upserts whole rows."""

    def __init__(self, cursor: sqlite3.Cursor | psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(sql, params)  # type: ignore[arg-type]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        return self._cursor.executemany(sql, rows)  # type: ignore[arg-type]

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def upsert(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        """Insert `rows` (values in column order), replacing those whose key is already there."""
        self.executemany(table.upsert_sql(), rows)


class _PostgresCursor(_Cursor):
    """A psycopg cursor that accepts `?` placeholders and upserts many rows through COPY."""

    _cursor: psycopg.Cursor[Any]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return super().execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        return super().executemany(sql.replace("?", "%s"), rows)

    def upsert(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        """Like `_Cursor.upsert`, but many rows go by a binary COPY into a temporary table, then one
        INSERT … SELECT … ON CONFLICT (a fraction of the server's work per row of a many-row INSERT …
        VALUES). A few rows (a live follower's batch) go by `executemany`: the four statements of the COPY
        path would cost more than they save."""
        if len(rows) < COPY_FROM_ROWS:
            super().upsert(table, rows)
            return
        staging, columns = f"staging_{table.name}", ", ".join(table.column_names)
        self._cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (LIKE {table.name})")
        with self._cursor.copy(f"COPY {staging} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([POSTGRES_TYPES[kind] for _, kind in table.columns])
            for row in rows:
                copy.write_row(row)
        self._cursor.execute(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {staging} "
                             + table.on_conflict_sql())
        self._cursor.execute(f"TRUNCATE {staging}")

    def copy_csv(self, table: Table, chunks: Iterable[bytes]) -> None:
        """Load whole-table CSV `chunks` (no header; an unquoted empty field is NULL) with one COPY: the bulk
        rebuild's writes (services/bulk), into a table it has just created without keys or indexes."""
        with self._cursor.copy(f"COPY {table.name} ({', '.join(table.column_names)}) FROM STDIN (FORMAT CSV)") as copy:
            for chunk in chunks:
                copy.write(chunk)


class ReadModelStore:
    """Transactions and queries on the database that holds the read models."""

    def __init__(self, database: Database, schema: str | None = None) -> None:
        """`schema` (PostgreSQL): the only schema this connection sees (its search_path), so that the same
        unqualified table names write a separate version of the read models (an online rebuild's)."""
        self.kind = "postgresql" if database.kind == "postgresql" else "sqlite"
        self._lock = threading.RLock()
        self._snapshot = False  # inside `snapshot()`
        self._url = database.url
        self.schema = schema
        if database.kind == "postgresql":
            self._pg = self._connect()
        else:
            path = database.sqlite_path or ":memory:"
            self._sqlite = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            if path != ":memory:":
                self._sqlite.execute("PRAGMA journal_mode=WAL")

    def sibling(self) -> ReadModelStore:
        """Another connection to the same database and schema (the bulk rebuild builds tables on two at once)."""
        return ReadModelStore(database_from_url(self._url), self.schema)

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """One atomic unit of work: commits on success, rolls back on any exception."""
        with self._lock:
            if self.kind == "postgresql":
                self._reconnect_if_broken()
                with self._pg.transaction(), self._pg.cursor() as cursor:
                    yield _PostgresCursor(cursor)
                return
            cursor = self._sqlite.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield _Cursor(cursor)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """The reads of the block see one state of the read models: a read-only REPEATABLE READ transaction on
        PostgreSQL (on the autocommit connection each statement sees its own, and a batch committed between a
        report's statements made one point into the other's answer: an IndexError, or a median at the wrong
        rank — second review of 2026-11-30), one read transaction on SQLite (WAL: a snapshot from its first
        read). An inner snapshot is the outer one; this store's writes wait for the block (its lock)."""
        with self._lock:
            if self._snapshot:
                yield
                return
            self._snapshot = True
            try:
                if self.kind == "postgresql":
                    self._reconnect_if_broken()
                    with self._pg.transaction():
                        self._pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                        yield
                else:
                    self._sqlite.execute("BEGIN")
                    try:
                        yield
                    finally:
                        self._sqlite.execute("COMMIT")  # it only read
            finally:
                self._snapshot = False

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            if self.kind == "postgresql":
                self._reconnect_if_broken()
                return self._query_postgres(sql.replace("?", "%s"), params)
            return self._sqlite.execute(sql, params).fetchall()

    def _query_postgres(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """One read on the autocommit connection; a read chosen as a deadlock's victim is asked again. An
        online rebuild's swap (online_rebuild) takes the read model's tables one by one, so a report joining
        two of them in the other order closed a cycle, and PostgreSQL aborted the report (the benchmark's
        funnel query during `rebuild --online`). A read changes nothing: asking again is safe, and by then the
        swap has its locks or has rolled back."""
        import psycopg
        from psycopg.pq import TransactionStatus

        for attempt in range(1, DEADLOCK_RETRIES + 1):
            try:
                return self._pg.execute(sql, params).fetchall()  # type: ignore[arg-type]
            except psycopg.errors.DeadlockDetected:
                if attempt == DEADLOCK_RETRIES or self._pg.info.transaction_status != TransactionStatus.IDLE:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _reconnect_if_broken(self) -> None:
        """After the server restarted or the network dropped, connect again (raises while still down).

        An idle connection the server closed is noticed before use (a readable socket), so the first
        statement after a restart runs on a fresh connection instead of failing."""
        import psycopg

        from services.storage.postgres_recorder import idle_connection_check

        try:
            idle_connection_check(self._pg)
        except psycopg.OperationalError:
            self._pg.close()
            self._pg = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg
        from psycopg import sql

        connection = psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        if self.schema:
            connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        return connection

    def close(self) -> None:
        with self._lock:
            (self._pg if self.kind == "postgresql" else self._sqlite).close()
