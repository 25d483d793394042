"""The log's saves send no NOTIFY (nothing LISTENs; a notifying commit takes an instance-wide lock, issue 13),
and a log migrated by an earlier version, whose insert function still notified, gets the new function from
`crm db migrate` and keeps its events."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from services.application import CrmApplication
from services.history import exporter, importer
from services.storage.log_migration import migrate_event_log
from services.storage.log_protection import LogNotMigrated
from services.storage.postgres_recorder import INSERT_FUNCTION
from services.settings import database_from_url
from tests.integration.test_app_role_postgres import _saved_customer
from tests.support import running_services as services

CHANNEL = "crm_events"  # the library's channel: the events table's name


def _function(owner_url: str) -> str:
    with psycopg.connect(owner_url) as connection:
        return connection.execute("SELECT pg_get_functiondef(%s::regproc)", (f"public.{INSERT_FUNCTION}",)).fetchone()[0]


def _as_an_earlier_version_left_it(owner_url: str) -> None:
    """The insert function as versions before issue 13 created it (NOTIFY before the insert), and their
    fingerprint: any other than this version's."""
    with psycopg.connect(owner_url, autocommit=True) as connection:
        connection.execute(_function(owner_url).replace("RETURN QUERY", f"NOTIFY {CHANNEL}; RETURN QUERY", 1))
        connection.execute("COMMENT ON TABLE crm_events IS 'crm event log 0123456789abcdef'")


def _notifications_while(url: str, write: object) -> int:
    """How many notifications a LISTENing connection gets on the log's channel while `write()` runs."""
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        write()  # type: ignore[operator]
        return sum(1 for _ in listener.notifies(timeout=0.5))


def test_saves_and_imports_send_no_notification(pg_database: str, tmp_path: Path) -> None:
    source = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'source.db'}"))
    _saved_customer(f"sqlite:///{tmp_path / 'source.db'}")
    history = tmp_path / "history.jsonl"
    with history.open("wb") as out:
        exporter.export_history(source, out)
    source.close()
    app = CrmApplication(database_from_url(pg_database))

    heard = _notifications_while(pg_database, lambda: (_saved_customer(pg_database),
                                                       importer.import_history(app, history, jobs=1)))

    assert heard == 0
    assert app.event_count() == 2
    app.close()


def test_a_log_migrated_when_saves_notified_is_refused_then_migrated_to_the_function_without(postgres_url: str) -> None:
    with services.temporary_database(postgres_url) as url:
        owner = services.owner_url(url)
        before = _saved_customer(url)
        _as_an_earlier_version_left_it(owner)
        assert "NOTIFY" in _function(owner)
        with pytest.raises(LogNotMigrated, match="another version"):
            CrmApplication(database_from_url(url))

        migrate_event_log(database_from_url(owner), "crm")

        assert "NOTIFY" not in _function(owner)
        heard = _notifications_while(url, lambda: _saved_customer(url))
        app = CrmApplication(database_from_url(url))
        assert heard == 0
        assert app.event_count() == 2 and app.repository.get(before).id == before
        app.close()
