"""Append-only for real: the database itself refuses UPDATE, DELETE (and TRUNCATE) on the event log."""

from __future__ import annotations

import sqlite3

import psycopg

from services.settings import Database

MESSAGE = "the event log is append-only"


def protect_event_log(database: Database, table: str) -> None:
    """Install (idempotently) triggers that make changing or removing stored events an error."""
    if database.kind == "postgresql":
        with psycopg.connect(database.url, autocommit=True) as connection:
            connection.execute(
                "CREATE OR REPLACE FUNCTION crm_refuse_event_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN RAISE EXCEPTION '{MESSAGE}: % refused on %', TG_OP, TG_TABLE_NAME; END $$"
            )
            connection.execute(
                f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION crm_refuse_event_change()"
            )
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
