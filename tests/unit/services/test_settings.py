import pytest

from services.settings import SettingsError, database_from_url, owner_database_from_environment, time_zone_from_environment


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


def test_the_application_never_creates_the_postgresql_log_itself() -> None:
    """Its DDL is the owner role's (`crm db migrate`); elsewhere the application creates its log."""
    assert database_from_url("postgresql://crm:crm@127.0.0.1:55432/crm").env["CREATE_TABLE"] == "false"
    assert "CREATE_TABLE" not in database_from_url("sqlite:///crm.db").env
    assert database_from_url("postgresql://crm:crm@127.0.0.1:55432/crm").role == "crm"


def test_the_owner_url_is_required_and_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRM_DATABASE_OWNER_URL", raising=False)
    with pytest.raises(SettingsError, match="CRM_DATABASE_OWNER_URL .*owner-url"):
        owner_database_from_environment()
    monkeypatch.setenv("CRM_DATABASE_OWNER_URL", "postgresql://crm_owner:x@127.0.0.1:55432/crm")
    assert owner_database_from_environment().role == "crm_owner"


def test_the_time_zone_defaults_to_utc_and_a_wrong_name_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRM_TIME_ZONE", raising=False)
    assert str(time_zone_from_environment()) == "UTC"
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Shanghai")
    assert str(time_zone_from_environment()) == "Asia/Shanghai"
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Beijing")  # not a zone-database name: Shanghai is
    with pytest.raises(SettingsError, match="CRM_TIME_ZONE: 'Asia/Beijing' is not a time zone"):
        time_zone_from_environment()
