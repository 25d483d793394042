"""The SQLite event log refuses UPDATE and DELETE at the database level."""

import sqlite3
from pathlib import Path

import pytest

from services.application import CrmApplication
from services.commands import RegisterCustomer
from services.settings import database_from_url
from tests.conftest import at


@pytest.mark.parametrize("statement", ["UPDATE stored_events SET topic = 'x'", "DELETE FROM stored_events"])
def test_stored_events_cannot_be_changed_or_removed(tmp_path: Path, statement: str) -> None:
    path = tmp_path / "crm.db"
    app = CrmApplication(database_from_url(f"sqlite:///{path}"))
    app.register_customer(RegisterCustomer("张三", "华东", "零售", "web"), at(0))
    app.close()

    connection = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="the event log is append-only"):
        connection.execute(statement)
    assert connection.execute("SELECT COUNT(*), MIN(topic) FROM stored_events").fetchone() == (
        1, "domain.customer:Customer.Registered")
    connection.close()
