"""The PostgreSQL log's recorder: the library's, saving events and a command's receipt in one round trip.

Imported only for a PostgreSQL log (settings name it by topic): psycopg costs ≈ 0.1 s to import. The library's recorder saves in a pipelined transaction: LOCK TABLE … IN
EXCLUSIVE MODE (so that notification ids commit in the order they are issued and a reader tailing the log
never passes a gap that fills later), NOTIFY, INSERT, a sync, then COMMIT in a second round trip. The table
lock is held across both round trips and whatever the client's process does between them, so concurrent
savers (several `crm serve` workers) queue behind a lock held by a process waiting for a CPU. Here one
autocommit statement calls a server-side function that does all of it, so the lock is held only while
PostgreSQL runs the insert and commits.

No NOTIFY (the library's insert sends one per save): nothing LISTENs (the followers poll), and a
transaction that notified takes an instance-wide lock while it commits. Measured with
tests/benchmarks/writers.py's rounds, interleaved (issue 13): see the README's Benchmarks. `crm db migrate`
replaces the function of a log set up before (CREATE OR REPLACE; the schema fingerprint changes, so the
application refuses that log until it is migrated).

LOCK TABLE … IN EXCLUSIVE MODE needs UPDATE, DELETE or TRUNCATE privilege, which the application role must
not have (deploy/postgres-roles.sql): so the two insert functions, and `crm_lock_events` that `crm import`'s
COPY takes the same lock with, are SECURITY DEFINER functions of the log's owner, with a fixed search_path
(every name in them is schema-qualified, so nothing the application creates can stand in for one).
`crm db migrate` creates them (services/storage/log_migration.py); the application gets EXECUTE on them only.
"""

from __future__ import annotations

import logging
import select
from collections.abc import Iterator, Sequence
from itertools import count
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from services import command_receipts
from services.command_receipts import Receipt
from services.storage.event_recorder import RetriedSaveConflict

log = logging.getLogger(__name__)
INSERT_FUNCTION = "crm_insert_events"
RECEIPT_FUNCTION = "crm_insert_events_with_receipt"
LOCK_FUNCTION = "crm_lock_events"
DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, pg_temp "  # run as the owner; see the docstring
# The events as four arrays, one per column, sent in binary: the library's array of a composite type was
# dumped as text by psycopg's Python code (the state hex-escaped) and parsed back by the server, ≈ 0.05 ms of
# the client's CPU and ≈ 0.03 ms of the server's per save.
COLUMNS = "ids {id_type}[], versions bigint[], topics text[], states bytea[]"


def idle_connection_check(connection: psycopg.Connection[Any]) -> None:
    """Raise if an idle pooled connection was closed by the server (a restart, an idle timeout).

    A connection we are not using only has something to read when the server sent its termination
    notice or closed the socket (nothing here LISTENs), so one `select` with no wait tells, without the
    round trip of a `SELECT 1` pre-ping (which cost 576 vs 674 stage changes/s over HTTP). The pool then
    drops the connection and hands out another, so the first command after a restart does not fail.
    """
    if connection.closed or connection.broken:
        raise psycopg.OperationalError("connection already closed")
    readable, _, _ = select.select([connection.fileno()], [], [], 0)
    if readable:
        raise psycopg.OperationalError("the server closed this connection while it was idle")


class _PoolCheck:
    """The pool's `check` callback: a stale connection makes the pool test all its idle ones at once
    (a restart closed them all; one by one, the pool would back off 1 s, 2 s… between them)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def __call__(self, connection: psycopg.Connection[Any]) -> None:
        try:
            idle_connection_check(connection)
        except psycopg.OperationalError:
            log.warning("a pooled PostgreSQL connection was closed by the server; replacing the idle ones")
            connection.close()  # else the pool takes it back as idle (psycopg has not noticed) and retries it
            self.pool.check()
            raise


class OneRoundTripRecorder(PostgresApplicationRecorder):
    """The library's application recorder whose inserts lock, insert and commit in one statement."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        datastore.pool._check = _PoolCheck(datastore.pool)  # psycopg_pool's `check` callback: no public setter
        names = {"schema": Identifier(datastore.schema), "table": Identifier(events_table_name),
                 "function": Identifier(INSERT_FUNCTION), "event": Identifier(self.stored_event_type_name),
                 "receipts": Identifier(command_receipts.TABLE),
                 "with_receipt": Identifier(RECEIPT_FUNCTION), "lock": Identifier(LOCK_FUNCTION)}
        self.sql_create_statements.extend(SQL(statement.replace(command_receipts.TABLE, "{schema}.{receipts}"))
                                          .format(**names) for statement in command_receipts.create_table_sql())
        self.sql_create_statements.extend(SQL(statement).format(**names) for statement in (
            # Earlier versions took the events as one array of the composite type: dropped, so that only
            # today's signatures take the log's lock (`crm db migrate` runs these on every deploy).
            "DROP FUNCTION IF EXISTS {schema}.{with_receipt}({schema}.{event}[], text, text, text, integer, text, "
            "bigint)",
            "DROP FUNCTION IF EXISTS {schema}.{function}({schema}.{event}[])"))
        self.sql_create_statements.append(SQL(
            f"CREATE OR REPLACE FUNCTION {{schema}}.{{function}}({COLUMNS}) RETURNS SETOF bigint "
            f"LANGUAGE plpgsql {DEFINER}SET lock_timeout = '{datastore.lock_timeout}s' AS $BODY$ BEGIN "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "RETURN QUERY INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(ids, versions, topics, states) "
            "RETURNING notification_id; "
            "END; $BODY$").format(**names, id_type=SQL(datastore.originator_id_type)))
        # The receipt goes in first: a key already answered fails here, before the events table is locked.
        self.sql_create_statements.append(SQL(
            f"CREATE OR REPLACE FUNCTION {{schema}}.{{with_receipt}}({COLUMNS}, "
            "principal text, idem_key text, fingerprint text, status integer, answer text, recorded_at bigint) "
            f"RETURNS SETOF bigint LANGUAGE plpgsql {DEFINER}AS $BODY$ BEGIN "
            f"INSERT INTO {{schema}}.{{receipts}} ({command_receipts.COLUMNS}) "
            "VALUES (principal, idem_key, fingerprint, status, answer, recorded_at); "
            "RETURN QUERY SELECT * FROM {schema}.{function}(ids, versions, topics, states); "
            "END; $BODY$").format(**names, id_type=SQL(datastore.originator_id_type)))
        self.sql_create_statements.append(SQL(
            f"CREATE OR REPLACE FUNCTION {{schema}}.{{lock}}() RETURNS void LANGUAGE plpgsql {DEFINER}AS $BODY$ "
            "BEGIN LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; END; $BODY$").format(**names))
        self.lock_table_statements[-1] = SQL("SELECT {schema}.{lock}()").format(**names)  # was LOCK TABLE
        arrays = "%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]"  # binary: no escaping of the states
        self._insert = SQL(f"SELECT * FROM {{schema}}.{{function}}({arrays})").format(
            **names, id_type=SQL(datastore.originator_id_type)).as_bytes()  # composed once
        self._insert_with_receipt = SQL(f"SELECT * FROM {{schema}}.{{with_receipt}}({arrays}, %s, %s, %s, %s, %s, %s)"
                                        ).format(**names, id_type=SQL(datastore.originator_id_type)).as_bytes()

    def insert_events(self, stored_events: Sequence[StoredEvent], *, receipt: Receipt | None = None,
                      **kwargs: Any) -> Sequence[int] | None:
        """Insert the events (and the receipt) in one transaction; returns their notification ids.

        A retry after a lost answer may meet its own first attempt's commit: the events' or the receipt's
        key then raises RetriedSaveConflict (an IntegrityError), and the caller looks the receipt up."""
        if not stored_events:
            return []
        columns = ([e.originator_id for e in stored_events], [e.originator_version for e in stored_events],
                   [e.topic for e in stored_events], [e.state for e in stored_events])
        if receipt is None:
            return self._insert_once(self._insert, columns, count())
        return self._insert_once(self._insert_with_receipt, (*columns, *receipt.row()), count())

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _insert_once(self, statement: bytes, params: tuple[Any, ...], attempts: Iterator[int]) -> list[int]:
        """One attempt (`attempts` counts them across the library's retries of a lost connection)."""
        retried = next(attempts) > 0
        try:
            with self.datastore.get_connection() as connection, connection.cursor(row_factory=tuple_row) as cursor:
                cursor.execute(statement, params, prepare=True)
                return [row[0] for row in cursor.fetchall()]
        except IntegrityError as error:
            if retried:
                raise RetriedSaveConflict(str(error)) from error
            raise

    def select_receipt(self, principal: str, key: str) -> Receipt | None:
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(command_receipts.SELECT_SQL.replace("?", "%s"), (principal, key))
            row = cursor.fetchone()
        return None if row is None else Receipt.from_row(tuple(row.values()))

    def insert_receipt(self, receipt: Receipt) -> bool:
        """Keep a receipt with no events (a refusal); False when the key already has one."""
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(command_receipts.INSERT_SQL.replace("?", "%s") + " ON CONFLICT DO NOTHING",
                           receipt.row())
            return cursor.rowcount == 1

    def prune_receipts(self, before_micros: int) -> int:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(command_receipts.PRUNE_SQL.replace("?", "%s"), (before_micros,))
            return cursor.rowcount

    def held_ids(self, ids: Sequence[UUID]) -> set[UUID]:
        """Which of `ids` have events in the log, in one round trip (one primary-key probe each)."""
        statement = SQL("SELECT DISTINCT originator_id FROM {schema}.{table} WHERE originator_id = ANY(%s)").format(
            schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(statement, (list(ids),))
            return {row["originator_id"] for row in cursor.fetchall()}

    def events_of(self, ids: Sequence[UUID]) -> dict[UUID, list[StoredEvent]]:
        """Every event of each of `ids`, in version order, in one round trip (the reminder process's batch:
        one query per item was most of its step at 50 due a second)."""
        found: dict[UUID, list[StoredEvent]] = {i: [] for i in ids}
        if not ids:
            return found
        statement = SQL("SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
                        "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version").format(
            schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with self.datastore.get_connection() as connection, connection.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(statement, (list(ids),))
            for originator, version, topic, state in cursor.fetchall():
                found[originator].append(StoredEvent(originator, version, topic, bytes(state)))
        return found
