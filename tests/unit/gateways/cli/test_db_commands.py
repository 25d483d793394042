"""`crm db migrate` refuses what it cannot do with a sentence (the PostgreSQL side: test_app_role_postgres)."""

import pytest
from typer.testing import CliRunner

from gateways.cli.main import app

runner = CliRunner()


def test_sqlite_has_no_roles_to_migrate(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("CRM_DATABASE_OWNER_URL", f"sqlite:///{tmp_path}/crm.db")

    result = runner.invoke(app, ["db", "migrate", "--app-role", "crm"])

    assert result.exit_code == 1
    assert "SQLite has no roles" in " ".join(result.output.split())
    assert not (tmp_path / "crm.db").exists()


def test_an_unreachable_owner_database_is_a_message_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_OWNER_URL", "postgresql://crm_owner:x@127.0.0.1:1/crm")
    monkeypatch.setenv("CRM_DATABASE_URL", "postgresql://crm:x@127.0.0.1:1/crm")

    result = runner.invoke(app, ["db", "migrate"])

    assert result.exit_code == 1
    assert "migration failed, nothing was granted" in " ".join(result.output.split())


def test_sharded_migration_needs_the_owner_url_of_each_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_SHARD_URLS", "postgresql://crm:x@127.0.0.1:1/a,postgresql://crm:x@127.0.0.1:1/b")
    monkeypatch.setenv("CRM_SHARD_OWNER_URLS", "postgresql://crm_owner:x@127.0.0.1:1/a")

    result = runner.invoke(app, ["db", "migrate"])

    assert result.exit_code == 1
    assert "CRM_SHARD_OWNER_URLS names 1 databases, CRM_SHARD_URLS 2" in " ".join(result.output.split())
