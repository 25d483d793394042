"""The PostgreSQL event log refuses UPDATE, DELETE and TRUNCATE at the database level, for any role."""

import psycopg
import pytest

from services.application import CrmApplication
from services.settings import database_from_url
from tests.conftest import at


@pytest.mark.parametrize("statement", ["UPDATE crm_events SET topic = 'x'", "DELETE FROM crm_events",
                                       "TRUNCATE crm_events"])
def test_stored_events_cannot_be_changed_or_removed(pg_database: str, statement: str) -> None:
    app = CrmApplication(database_from_url(pg_database))
    app.register_customer("张三", "", "华东", "零售", "web", at(0))
    app.close()

    with psycopg.connect(pg_database, autocommit=True) as connection:
        with pytest.raises(psycopg.errors.RaiseException, match="the event log is append-only"):
            connection.execute(statement)
        assert connection.execute("SELECT COUNT(*) FROM crm_events").fetchone() == (1,)
