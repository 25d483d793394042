"""The PostgreSQL event log refuses UPDATE, DELETE and TRUNCATE at the database level, for any role: the trigger
holds even for the role that owns the log (the application's own role may not even try: test_app_role_postgres)."""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import psycopg
import pytest

from services.application import CrmApplication
from services.commands import RegisterCustomer
from services.settings import database_from_url
from tests.conftest import at

from tests.support import running_services as services


@pytest.mark.parametrize("statement", ["UPDATE crm_events SET topic = 'x'", "DELETE FROM crm_events",
                                       "TRUNCATE crm_events"])
def test_stored_events_cannot_be_changed_or_removed(pg_database: str, statement: str) -> None:
    app = CrmApplication(database_from_url(pg_database))
    app.register_customer(RegisterCustomer("张三", "华东", "零售", "web"), at(0))
    app.close()

    with psycopg.connect(services.owner_url(pg_database), autocommit=True) as connection:
        with pytest.raises(psycopg.errors.RaiseException, match="the event log is append-only"):
            connection.execute(statement)
        assert connection.execute("SELECT COUNT(*) FROM crm_events").fetchone() == (1,)


def _open_and_close(url: str) -> None:
    CrmApplication(database_from_url(url)).close()


def test_processes_opening_the_log_at_once_all_start(pg_database: str) -> None:
    _open_and_close(pg_database)  # the tables exist, as when rebuild jobs or serve workers start
    with ProcessPoolExecutor(max_workers=6, mp_context=multiprocessing.get_context("spawn")) as pool:
        for _ in range(3):
            list(pool.map(_open_and_close, [pg_database] * 6))  # each raised "tuple concurrently updated" at times

    with psycopg.connect(services.owner_url(pg_database), autocommit=True) as connection:
        with pytest.raises(psycopg.errors.RaiseException, match="the event log is append-only"):
            connection.execute("DELETE FROM crm_events")
