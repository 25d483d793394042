import pytest

from services.settings import SettingsError, database_from_url


def test_unset_url_selects_the_embedded_sqlite_file() -> None:
    database = database_from_url(None)
    assert database.kind == "sqlite"
    assert database.env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert database.sqlite_path == "crm.sqlite3"


def test_sqlite_url_keeps_relative_and_absolute_paths() -> None:
    assert database_from_url("sqlite:///data/crm.db").sqlite_path == "data/crm.db"
    assert database_from_url("sqlite:////var/lib/crm.db").sqlite_path == "/var/lib/crm.db"


def test_postgresql_url_maps_every_part() -> None:
    env = database_from_url("postgresql://crm:p%40ss@127.0.0.1:55432/crm_test").env
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]) == ("127.0.0.1", "55432", "crm_test")
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("crm", "p@ss")


@pytest.mark.parametrize("url", ["mysql://x@h/db", "postgresql://127.0.0.1/db", "sqlite://", "postgresql://u@h/"])
def test_unusable_urls_are_refused_with_a_message(url: str) -> None:
    with pytest.raises(SettingsError, match="URL|scheme"):
        database_from_url(url)
