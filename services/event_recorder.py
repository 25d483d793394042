"""Saving events to PostgreSQL in one round trip, with the library's ordering guarantee.

The library's recorder saves in a pipelined transaction: LOCK TABLE … IN EXCLUSIVE MODE (so that
notification ids commit in the order they are issued and a reader tailing the log never passes a gap
that fills later), NOTIFY, INSERT, a sync, then COMMIT in a second round trip. The table lock is held
across both round trips and whatever the client's process does between them, so concurrent savers
(several `crm serve` workers) queue behind a lock held by a process waiting for a CPU.

Here one autocommit statement calls a server-side function that does all of it, so the lock is held
only while PostgreSQL runs the insert and commits.

LOCK TABLE … IN EXCLUSIVE MODE needs UPDATE, DELETE or TRUNCATE privilege, which the application role must
not have (deploy/postgres-roles.sql): so this function, and `crm_lock_events` that `crm import`'s COPY takes
the same lock with, are SECURITY DEFINER functions of the log's owner, with a fixed search_path (every name
in them is schema-qualified, so nothing the application creates can stand in for one). `crm db migrate`
creates them; the application gets EXECUTE on them only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

INSERT_FUNCTION = "crm_insert_events"
LOCK_FUNCTION = "crm_lock_events"
DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, pg_temp "  # run as the owner; see the docstring


class OneRoundTripRecorder(PostgresApplicationRecorder):
    """The library's application recorder whose inserts lock, notify, insert and commit in one statement."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        names = {"schema": Identifier(datastore.schema), "table": Identifier(events_table_name),
                 "function": Identifier(INSERT_FUNCTION), "event": Identifier(self.stored_event_type_name),
                 "channel": Identifier(self.channel_name), "lock": Identifier(LOCK_FUNCTION)}
        self.sql_create_statements.append(SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}(events {schema}.{event}[]) RETURNS SETOF bigint "
            f"LANGUAGE plpgsql {DEFINER}AS $BODY$ BEGIN "
            f"SET LOCAL lock_timeout = '{datastore.lock_timeout}s'; "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
            "RETURN QUERY INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT originator_id, originator_version, topic, state FROM unnest(events) "
            "RETURNING notification_id; "
            "END; $BODY$").format(**names))
        self.sql_create_statements.append(SQL(
            f"CREATE OR REPLACE FUNCTION {{schema}}.{{lock}}() RETURNS void LANGUAGE plpgsql {DEFINER}AS $BODY$ "
            "BEGIN LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; END; $BODY$").format(**names))
        self.lock_table_statements[-1] = SQL("SELECT {schema}.{lock}()").format(**names)  # was LOCK TABLE
        self._insert = SQL("SELECT * FROM {schema}.{function}(%s)").format(**names).as_bytes()  # composed once

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        rows = [self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
                for e in stored_events]
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(self._insert, (rows,), prepare=True)
            return [row[INSERT_FUNCTION] for row in cursor.fetchall()]
