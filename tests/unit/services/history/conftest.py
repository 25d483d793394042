"""Fixtures of the history tests: an empty SQLite log to import into."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.application import CrmApplication
from services.settings import database_from_url


@pytest.fixture
def target(tmp_path: Path) -> Iterator[CrmApplication]:
    """An empty log (SQLite file) that a test imports history into."""
    crm = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'target.db'}"))
    yield crm
    crm.close()
