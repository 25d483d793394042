"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from domain.base import Meta
from services.application import CrmApplication
from services.settings import database_from_url

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def at(days: float, actor: str = "李娜") -> Meta:
    """Meta for an event `days` after 1 March 2026 09:00 UTC."""
    return Meta(occurred_at=T0 + timedelta(days=days), actor=actor)


def catch_up(url: str, *names: str) -> None:
    """`crm projections catch-up [NAMES]` on the log at `url`: reports only read what a projector applied."""
    from typer.testing import CliRunner

    from gateways.cli.main import app

    result = CliRunner().invoke(app, ["projections", "catch-up", *names], env={"CRM_DATABASE_URL": url})
    assert result.exit_code == 0, result.output


@pytest.fixture
def crm() -> Iterator[CrmApplication]:
    """An application on the in-memory store with the default pipelines defined."""
    application = CrmApplication(database_from_url("memory://"))
    application.ensure_default_pipelines(at(-30, "setup"))
    yield application
    application.close()
