"""`crm db migrate`: the owner role creates (or updates) the PostgreSQL event log and gives the application
role its share — SELECT and INSERT on the log, EXECUTE on the functions that take the log's lock, SELECT,
INSERT and DELETE on the command receipts (pruned by `crm receipts prune`), a schema of its own named after it
for the tables it creates (read models, positions, personal-data keys), a second one (`<role>_green`) where an
online rebuild builds the next version of read models — and nothing that could change the log.

The application may not create anything in the log's schema: an object it planted there (a function overload, a
table named like one the owner expects) could run with the owner's rights the next time the owner migrates.
Its schema is named after its role, so PostgreSQL's default search_path ("$user", public) puts its own tables
first and finds the log in public — PostgreSQL's "secure schema usage pattern".

Why a separate step: whoever owns a table may ALTER it, DISABLE its triggers, DROP it or give it away, so an
application that created its own log could rewrite history in one transaction. The application opened with
CRM_DATABASE_URL never runs the log's DDL (settings: CREATE_TABLE=false); it checks the log is set up
(log_protection.check_event_log) and refuses to start otherwise. Idempotent: run it on every deploy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment
from psycopg import sql

from services.application import CrmApplication
from services import command_receipts
from services.storage.postgres_recorder import INSERT_FUNCTION, LOCK_FUNCTION, RECEIPT_FUNCTION
from services.storage.log_protection import TRIGGER_FUNCTION, protect_event_log, schema_fingerprint
from services.storage.read_model_store import GREEN_SUFFIX
from services.storage.schema_lock import advisory_lock
from services.settings import Database, SettingsError

log = logging.getLogger(__name__)
FUNCTIONS = [INSERT_FUNCTION, RECEIPT_FUNCTION, LOCK_FUNCTION]  # SECURITY DEFINER: the application's EXECUTE


class MigrationRefused(SettingsError):
    """The owner role cannot set the log up safely (the application would own part of it)."""


@dataclass(frozen=True)
class Migrated:
    table: str
    owner: str
    app_role: str | None
    adopted: list[str]
    moved: list[str]  # the application's tables moved out of the log's schema (an older install)


def migrate_event_log(owner: Database, app_role: str | None) -> Migrated:
    """As `owner`: create the log, its functions and append-only trigger, then grant `app_role` its share.

    Objects of the log an earlier single-role install let the application create are first taken over
    (possible because the owner role is a member of the application role, deploy/postgres-roles.sql)."""
    if owner.kind != "postgresql":
        raise SettingsError(f"{owner.url!r} is not PostgreSQL: SQLite has no roles (the application creates its "
                            "log and triggers itself; the file's permissions are the boundary)")
    env = Environment(CrmApplication.name, {**owner.env, "CREATE_TABLE": "true"})
    with advisory_lock(owner), InfrastructureFactory.construct(env) as factory:  # type: ignore[attr-defined]
        with psycopg.connect(owner.url, autocommit=True) as connection:
            if app_role == owner.role:
                log.warning("the application role %s is the log's owner: it could change stored events", app_role)
                app_role = None
            adopted = _adopt(connection, factory.datastore.schema, app_role)
        recorder = factory.application_recorder()  # creates the table, type and functions
        table = recorder.events_table_name
        protect_event_log(owner, table)
        moved = []
        with psycopg.connect(owner.url, autocommit=True) as connection, connection.transaction():
            if app_role:
                _grant(connection, factory.datastore.schema, table, app_role)
                moved = _move_into_own_schema(connection, factory.datastore.schema, app_role)
            connection.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(
                sql.Identifier(factory.datastore.schema, table), sql.Literal(schema_fingerprint(recorder))))
    log.info("event log %s migrated by %s for application role %s", table, owner.role, app_role)
    return Migrated(table, str(owner.role), app_role, adopted, moved)


def _adopt(connection: psycopg.Connection, schema: str, app_role: str | None) -> list[str]:
    """Make the current role own the database and every object in `schema` that belongs to the log but to the
    application role; refuse when that is not possible (another role owns them)."""
    adopted = []
    database_owner = connection.execute(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()").fetchone()
    if app_role and database_owner and database_owner[0] == app_role:  # it would own schema public (PG 15+)
        _take(connection, sql.SQL("ALTER DATABASE {} OWNER TO CURRENT_USER").format(
            sql.Identifier(connection.info.dbname)), f"database {connection.info.dbname}")
        adopted.append(f"database {connection.info.dbname}")
    rows = connection.execute(
        "SELECT kind, name, pg_get_userbyid(owner) FROM ("
        " SELECT 'TABLE' AS kind, c.oid::regclass::text AS name, c.relowner AS owner FROM pg_class c"
        "  WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind = 'r' AND c.relname = ANY(%(tables)s)"
        " UNION ALL SELECT 'TYPE', t.oid::regtype::text, t.typowner FROM pg_type t"
        "  WHERE t.typnamespace = %(schema)s::regnamespace AND t.typname LIKE 'stored\\_event\\_%%'"
        "   AND t.typtype = 'c'"
        " UNION ALL SELECT 'FUNCTION', p.oid::regprocedure::text, p.proowner FROM pg_proc p"
        "  WHERE p.pronamespace = %(schema)s::regnamespace AND (p.proname = ANY(%(functions)s)"
        "   OR p.proname LIKE 'es\\_insert\\_events\\_%%')) AS log_objects WHERE owner <> %(me)s::regrole",
        {"schema": schema, "tables": [f"{CrmApplication.name.lower()}_events", command_receipts.TABLE],
         "me": connection.info.user, "functions": [*FUNCTIONS, TRIGGER_FUNCTION]},
    ).fetchall()
    for kind, name, current_owner in rows:
        if current_owner != app_role:
            raise MigrationRefused(f"{kind.lower()} {name} belongs to {current_owner}, neither the owner role "
                                   f"{connection.info.user} nor the application role: hand it over as a superuser")
        statement = sql.SQL(f"ALTER {kind} {name} OWNER TO CURRENT_USER")  # names from the catalogue, quoted
        _take(connection, statement, f"{kind.lower()} {name}")
        adopted.append(f"{kind.lower()} {name}")
    return adopted


def _take(connection: psycopg.Connection, statement: sql.Composable, what: str) -> None:
    log.info("taking over %s from the application role (it must not own the log)", what)
    try:
        connection.execute(statement)
    except psycopg.errors.InsufficientPrivilege as error:
        raise MigrationRefused(f"cannot take over {what}: {error} (make the owner role a member of the "
                               "application role, as deploy/postgres-roles.sql does, or run as a superuser)") from None


def _grant(connection: psycopg.Connection, schema: str, table: str, app_role: str) -> None:
    """Exactly the application's share of the log; every privilege granted before is revoked first."""
    names = {"role": sql.Identifier(app_role), "schema": sql.Identifier(schema), "own": sql.Identifier(app_role),
             "table": sql.Identifier(schema, table), "receipts": sql.Identifier(schema, command_receipts.TABLE),
             "database": sql.Identifier(connection.info.dbname), "green": sql.Identifier(app_role + GREEN_SUFFIX)}
    statements = [
        "REVOKE ALL ON TABLE {table}, {receipts} FROM PUBLIC, {role}",
        "GRANT SELECT, INSERT ON TABLE {table} TO {role}",  # INSERT: `crm import`'s COPY
        "GRANT SELECT, INSERT, DELETE ON TABLE {receipts} TO {role}",  # DELETE: `crm receipts prune`
        "REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC, {role}",  # see the module's docstring
        "GRANT USAGE ON SCHEMA {schema} TO {role}",
        "CREATE SCHEMA IF NOT EXISTS {own} AUTHORIZATION {role}",  # its tables: read models, positions, keys
        "CREATE SCHEMA IF NOT EXISTS {green} AUTHORIZATION {role}",  # `crm projections rebuild --online` builds there
        "GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {role}",  # temporary: COPY staging of read models
        # Tables and sequences the owner adds later: readable and appendable, never changeable.
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT ON TABLES TO {role}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {role}",
        "ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC",  # SECURITY DEFINER ones: one by one
    ]
    for statement in statements:
        connection.execute(sql.SQL(statement).format(**names))
    sequence = connection.execute("SELECT pg_get_serial_sequence(%s, 'notification_id')",
                                  (names["table"].as_string(connection),)).fetchone()[0]
    functions = [row[0] for row in connection.execute(  # every signature, old ones included
        "SELECT oid::regprocedure::text FROM pg_proc WHERE pronamespace = %s::regnamespace AND proname = ANY(%s)",
        (schema, FUNCTIONS))]
    for name in functions:  # names from the catalog, already quoted where needed
        connection.execute(sql.SQL("REVOKE ALL ON FUNCTION {} FROM PUBLIC, {}").format(sql.SQL(name), names["role"]))
        connection.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(name), names["role"]))
    connection.execute(sql.SQL("REVOKE ALL ON SEQUENCE {} FROM PUBLIC, {}").format(sql.SQL(sequence), names["role"]))
    connection.execute(sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(sql.SQL(sequence), names["role"]))


def _move_into_own_schema(connection: psycopg.Connection, schema: str, app_role: str) -> list[str]:
    """Move the tables the application created in the log's schema before it had its own (read models,
    positions, personal-data keys: losing the keys would forget everyone) into its schema, rows and all."""
    owner = connection.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s",
                               (app_role,)).fetchone()
    if owner is None or owner[0] != app_role:
        raise MigrationRefused(f"schema {app_role} belongs to {owner and owner[0]}, not to the application role")
    tables = [row[0] for row in connection.execute(
        "SELECT relname::text FROM pg_class WHERE relnamespace = %s::regnamespace AND relkind IN ('r', 'p') "
        "AND relowner = %s::regrole ORDER BY relname", (schema, app_role))]
    for table in tables:
        log.info("moving table %s of the application role from schema %s to its own", table, schema)
        connection.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
            sql.Identifier(schema, table), sql.Identifier(app_role)))
    return tables
