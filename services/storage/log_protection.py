"""Append-only for real: the database itself refuses UPDATE, DELETE (and TRUNCATE) on the event log.

On SQLite (no roles) the application installs the triggers itself when it opens the log; the file's
permissions are the only boundary against whoever runs it. On PostgreSQL a trigger alone would hold only
against strangers: the table's owner may disable it. So the owner role installs it (`crm db migrate`,
services/storage/log_migration.py) and the application, running as another role, only checks at start that the log
is there, protected and of this version of the code — it never creates or changes it.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from typing import Any

from services.settings import Database, SettingsError

log = logging.getLogger(__name__)

MESSAGE = "the event log is append-only"
TRIGGER_FUNCTION = "crm_refuse_event_change"
ADVICE = ("have the owner role run `crm db migrate` (CRM_DATABASE_OWNER_URL set to its URL; "
          "`deploy/postgres.sh migrate` does it for the local cluster)")


class LogNotMigrated(SettingsError):
    """The PostgreSQL database has no event log of this version: its owner must run `crm db migrate`."""


def protect_event_log(database: Database, table: str) -> None:
    """Install (idempotently) triggers that make changing or removing stored events an error."""
    if database.kind == "postgresql":
        import psycopg  # here: ≈ 0.1 s to import, which an SQLite log need not pay

        with psycopg.connect(database.url, autocommit=True) as connection:
            for statement in trigger_statements(table):
                connection.execute(statement)
    elif database.sqlite_path:
        connection = sqlite3.connect(database.sqlite_path, timeout=30)
        try:
            for operation in ("UPDATE", "DELETE"):
                connection.execute(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: {operation} refused'); END"
                )
            connection.commit()
        finally:
            connection.close()


def trigger_statements(table: str) -> list[str]:
    return [
        f"CREATE OR REPLACE FUNCTION {TRIGGER_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{MESSAGE}: % refused on %', TG_OP, TG_TABLE_NAME; END $$",
        f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGER_FUNCTION}()",
    ]


def schema_fingerprint(recorder: Any) -> str:
    """A digest of the log's DDL (the library's and ours): `crm db migrate` writes it as the table's comment,
    and the application refuses a log whose functions another version of the code created."""
    statements = [statement.as_string() for statement in recorder.sql_create_statements]
    ddl = "\n".join([*statements, *trigger_statements(recorder.events_table_name)])
    return "crm event log " + hashlib.sha256(ddl.encode()).hexdigest()[:16]


def check_event_log(database: Database, table: str) -> str | None:
    """On PostgreSQL, before the application creates anything: raise LogNotMigrated unless the owner has set up
    the log `table` with its trigger, and warn when the application's own role could change it (it owns it,
    or was granted more than SELECT and INSERT). Returns the fingerprint `crm db migrate` left (see
    `check_log_version`); None elsewhere."""
    if database.kind != "postgresql":
        return None
    import psycopg

    with psycopg.connect(database.url, autocommit=True, connect_timeout=10) as connection:
        row = connection.execute(
            "SELECT coalesce(obj_description(c.oid, 'pg_class'), ''), pg_get_userbyid(c.relowner) = current_user, "
            "has_table_privilege(c.oid, 'UPDATE, DELETE, TRUNCATE'), EXISTS (SELECT FROM pg_trigger t WHERE "
            "t.tgrelid = c.oid AND t.tgname = %s AND t.tgenabled <> 'D'), has_schema_privilege(current_schema(), "
            "'CREATE') FROM pg_class c WHERE c.oid = to_regclass(%s)", (f"{table}_append_only", table),
        ).fetchone()
    if row is None:
        raise LogNotMigrated(f"database {database.env['POSTGRES_DBNAME']} has no event log {table}: {ADVICE}")
    fingerprint, owned, changeable, protected, may_create = row
    if not (fingerprint and protected and may_create):  # an older, single-role install; roles changed since
        raise LogNotMigrated(f"the event log {table} was not set up for role {database.role} by its owner, or "
                             f"is not protected: {ADVICE}")
    if owned or changeable:
        log.warning("role %s can change or remove stored events in %s: run the application as a role that "
                    "does not own the log (deploy/postgres-roles.sql)", database.role, table)
    return str(fingerprint)


def check_log_version(recorder: Any, fingerprint: str) -> None:
    """Refuse a log whose DDL (functions, trigger) another version of the code set up."""
    if fingerprint != schema_fingerprint(recorder):
        raise LogNotMigrated(f"the event log {recorder.events_table_name} was set up by another version of the "
                             f"CRM: {ADVICE}")
