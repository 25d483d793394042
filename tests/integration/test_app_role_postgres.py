"""The application's own role cannot tamper with the PostgreSQL event log (issue 10, defect 6).

Before, the role the CRM ran as owned the log, so in one transaction it could disable the append-only trigger,
rewrite one event, delete another and re-enable it. Now an owner role sets the log up (`crm db migrate`,
services/storage/log_migration.py) and the application role — the one every integration test runs as (fixtures in
services.py) — may only read and append: everything else is refused by PostgreSQL's privileges.
"""

from __future__ import annotations

import os
import subprocess
import sys
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from domain.customer import Customer
from services.application import CrmApplication
from services.commands import AddTag, RegisterCustomer
from services.storage.log_migration import migrate_event_log
from services.storage.log_protection import LogNotMigrated, protect_event_log
from services.keys.key_store import KeyStore
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import at

from tests.support import running_services as services

TAMPERING = {
    "update": "UPDATE crm_events SET topic = 'x'",
    "delete": "DELETE FROM crm_events",
    "truncate": "TRUNCATE crm_events",
    "disable trigger": "ALTER TABLE crm_events DISABLE TRIGGER crm_events_append_only",
    "disable all triggers": "ALTER TABLE crm_events DISABLE TRIGGER ALL",
    "drop": "DROP TABLE crm_events",
    "rename": "ALTER TABLE crm_events RENAME TO crm_events_old",
    "give away": "ALTER TABLE crm_events OWNER TO crm",
    "become the owner": "SET ROLE crm_owner",
    "replace the trigger's function": "CREATE OR REPLACE FUNCTION public.crm_refuse_event_change() RETURNS trigger "
                                      "LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
    "drop the trigger's function": "DROP FUNCTION public.crm_refuse_event_change() CASCADE",
    "a rule": "CREATE RULE skip AS ON INSERT TO crm_events DO INSTEAD NOTHING",
    "a child table read with the log": "CREATE TABLE forged () INHERITS (crm_events)",
    "replica mode skips triggers": "SET session_replication_role = replica",
    "rewind the sequence": "SELECT setval(pg_get_serial_sequence('crm_events', 'notification_id'), 1)",
    "drop the schema": "DROP SCHEMA public CASCADE",
    "plant a table where the owner looks": "CREATE TABLE public.planted (x int)",
    "plant a function where the owner looks": "CREATE FUNCTION public.unnest(stored_event_uuid[]) RETURNS SETOF int "
                                              "LANGUAGE sql AS 'SELECT 1'",
}


def _log_digest(app_url: str) -> tuple[int, str]:
    """How many events and a digest of all of them, read by the owner (who sees what is really there)."""
    with psycopg.connect(services.owner_url(app_url)) as connection:
        return connection.execute(
            "SELECT count(*), md5(string_agg(notification_id || originator_id::text || originator_version || topic "
            "|| encode(state, 'hex'), ',' ORDER BY notification_id)) FROM crm_events").fetchone()


def _saved_customer(url: str) -> UUID:
    app = CrmApplication(database_from_url(url))
    try:
        return app.register_customer(RegisterCustomer("张三", "华东", "零售", "web", company="上海某某科技有限公司"), at(0))
    finally:
        app.close()


@pytest.mark.parametrize("statement", TAMPERING.values(), ids=TAMPERING.keys())
def test_the_application_role_cannot_change_remove_or_unprotect_stored_events(pg_database: str,
                                                                              statement: str) -> None:
    _saved_customer(pg_database)
    before = _log_digest(pg_database)

    with psycopg.connect(pg_database, autocommit=True) as connection:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute(statement)

    assert _log_digest(pg_database) == before


def test_the_reported_rewrite_in_one_transaction_is_refused_at_its_first_step(pg_database: str) -> None:
    """Defect 6 as reported: disable the trigger, rewrite one event, delete another, re-enable."""
    _saved_customer(pg_database)
    _saved_customer(pg_database)
    before = _log_digest(pg_database)

    with psycopg.connect(pg_database) as connection:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner of table crm_events"):
            with connection.transaction():
                connection.execute("ALTER TABLE crm_events DISABLE TRIGGER crm_events_append_only")
                connection.execute("UPDATE crm_events SET state = state WHERE notification_id = 1")
                connection.execute("DELETE FROM crm_events WHERE notification_id = 2")
                connection.execute("ALTER TABLE crm_events ENABLE TRIGGER crm_events_append_only")

    assert _log_digest(pg_database) == before and before[0] == 2


def test_the_application_role_saves_and_reads_through_every_path_of_the_library(crm_pg: CrmApplication) -> None:
    customer_id = crm_pg.register_customer(RegisterCustomer("李四", "华南", "制造", "referral", company="深圳某某制造厂"), at(1))
    crm_pg.add_tag(AddTag(customer_id, "VIP"), at(2))

    assert crm_pg.get(Customer, customer_id).name == "李四"
    head = crm_pg.recorder.max_notification_id()
    assert head and crm_pg.event_count() == head
    assert [n.id for n in crm_pg.recorder.select_notifications(1, 100)] == list(range(1, head + 1))
    with psycopg.connect(crm_pg.database.url) as connection:
        who, owner = connection.execute("SELECT current_user::text, pg_get_userbyid(relowner)::text FROM pg_class "
                                        "WHERE oid = 'crm_events'::regclass").fetchone()
    assert (who, owner) == ("crm", "crm_owner")


def _crm(url: str, *arguments: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CRM_DATABASE_URL": url, "PYTHONPATH": str(services.REPO_ROOT), **extra}
    return subprocess.run([sys.executable, "-m", "gateways.cli.main", *arguments], env=env, cwd=services.REPO_ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_cli_works_end_to_end_as_the_application_role(pg_database: str) -> None:
    """A command, a projection rebuild and forgetting a person, each a `crm` process on the migrated database."""
    demo = _crm(pg_database, "demo", "--leads", "10", "--days", "30")
    assert demo.returncode == 0, demo.stderr
    customer_id = _saved_customer(pg_database)

    rebuilt = _crm(pg_database, "projections", "rebuild", "--jobs", "2")
    forgotten = _crm(pg_database, "customer", "forget", str(customer_id))
    timeline = _crm(pg_database, "customer", "timeline", str(customer_id), "--json")

    assert rebuilt.returncode == 0 and "Rebuilt" in rebuilt.stdout, rebuilt.stderr
    assert forgotten.returncode == 0, forgotten.stderr
    assert timeline.returncode == 0 and "张三" not in timeline.stdout, timeline.stderr
    with psycopg.connect(services.owner_url(pg_database)) as connection:
        owners = connection.execute("SELECT schemaname::text, tablename::text, tableowner::text FROM pg_tables "
                                    "WHERE schemaname IN ('public', 'crm')").fetchall()
    log_tables = {(table, owner) for schema, table, owner in owners if schema == "public"}
    own_tables = {table for schema, table, owner in owners if schema == "crm" and owner == "crm"}
    assert log_tables == {("crm_events", "crm_owner"), ("crm_command_receipts", "crm_owner")}
    assert {"crm_personal_keys", "projection_positions", "timeline_entries"} <= own_tables  # in its own schema
    assert len(own_tables) == len(owners) - 2


def test_an_unmigrated_database_is_refused_until_its_owner_migrates_it(postgres_url: str) -> None:
    with services.temporary_database(postgres_url, migrated=False) as url:
        refused = _crm(url, "projections", "rebuild")
        assert refused.returncode == 1 and "crm db migrate" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT to_regclass('crm_events')").fetchone() == (None,)

        migrated = _crm(url, "db", "migrate", CRM_DATABASE_OWNER_URL=services.owner_url(url))
        again = _crm(url, "db", "migrate", CRM_DATABASE_OWNER_URL=services.owner_url(url))

        assert migrated.returncode == 0 and "may only read and append" in migrated.stdout, migrated.stderr
        assert again.returncode == 0, again.stderr  # idempotent: run on every deploy
        assert _crm(url, "projections", "rebuild").returncode == 0


def test_migrate_without_an_owner_url_says_what_to_set(pg_database: str) -> None:
    done = _crm(pg_database, "db", "migrate", CRM_DATABASE_OWNER_URL="")
    assert done.returncode == 1 and "CRM_DATABASE_OWNER_URL" in done.stderr


def test_a_log_set_up_by_another_version_of_the_code_is_refused(pg_database: str) -> None:
    with psycopg.connect(services.owner_url(pg_database), autocommit=True) as connection:
        connection.execute("COMMENT ON TABLE crm_events IS 'crm event log 0000000000000000'")

    with pytest.raises(LogNotMigrated, match="another version"):
        CrmApplication(database_from_url(pg_database))


def test_migrate_takes_over_a_log_the_application_role_created_in_a_single_role_install(postgres_url: str) -> None:
    """An install from before the two roles: the application's role owns the database, the log and its trigger."""
    with services.temporary_database(postgres_url, migrated=False) as url:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(services.owner_url(url), autocommit=True) as connection:
            connection.execute(f"ALTER DATABASE {name} OWNER TO crm")
        database = database_from_url(url)
        env = Environment(CrmApplication.name, {**database.env, "CREATE_TABLE": "true"})
        with InfrastructureFactory.construct(env) as factory:  # what the application did at start
            factory.application_recorder()
        protect_event_log(database, "crm_events")
        old_keys = KeyStore(ReadModelStore(database))  # in schema public, as the application's tables were
        old_keys.ensure(["subject-1"])
        key = old_keys.key("subject-1")
        old_keys.store.close()
        with pytest.raises(LogNotMigrated, match="not set up for role crm by its owner"):
            CrmApplication(database)

        done = migrate_event_log(database_from_url(services.owner_url(url)), "crm")

        assert {what.split(" ")[0] for what in done.adopted} == {"database", "table", "type", "function"}
        assert done.moved == ["crm_personal_forgettings", "crm_personal_keys"]  # what KeyStore creates
        keys = KeyStore(ReadModelStore(database))
        assert keys.key("subject-1") == key  # not a fresh, empty key table: nobody was forgotten by the move
        keys.store.close()
        customer_id = _saved_customer(url)
        with psycopg.connect(url, autocommit=True) as connection:
            for statement in ("ALTER TABLE crm_events DISABLE TRIGGER ALL", "DELETE FROM crm_events",
                              f"ALTER DATABASE {name} OWNER TO crm"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    connection.execute(statement)
        app = CrmApplication(database)
        assert app.get(Customer, customer_id).name == "张三"
        app.close()
