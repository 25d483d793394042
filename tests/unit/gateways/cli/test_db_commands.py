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


@pytest.mark.parametrize(("env", "message"), [
    ({"CRM_DATABASE_OWNER_URL": "postgresql://crm_owner:x@127.0.0.1:1/crm",
      "CRM_DATABASE_URL": "postgresql://crm:x@127.0.0.1:1/crm"}, "migration failed, nothing was granted"),
    ({"CRM_SHARD_URLS": "postgresql://crm:x@127.0.0.1:1/a,postgresql://crm:x@127.0.0.1:1/b",
      "CRM_SHARD_OWNER_URLS": "postgresql://crm_owner:x@127.0.0.1:1/a"},
     "CRM_SHARD_OWNER_URLS names 1 databases, CRM_SHARD_URLS 2"),  # each shard needs its owner's URL
])
def test_an_unreachable_or_unnamed_owner_database_is_a_message_not_a_traceback(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    result = runner.invoke(app, ["db", "migrate"])

    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
