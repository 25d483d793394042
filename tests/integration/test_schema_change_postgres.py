"""A server started on a PostgreSQL database whose funnel tables another version made: the funnel answers 503
with the online build's progress (built in `<role>_green`) while the segments answer, then what a clean rebuild
answers; an offline rebuild/reset meanwhile is refused, nothing changed (tests.support.schema_change_start)."""

from __future__ import annotations

import pytest

from services.settings import database_from_url
from tests.support.schema_change_start import build_every_read_model, check_a_start_with_changed_funnel_tables


def test_a_start_with_changed_funnel_tables_answers_503_then_the_new_version_on_postgres(
        pg_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    database = database_from_url(pg_database)
    monkeypatch.setenv("CRM_DATABASE_URL", pg_database)
    build_every_read_model(database, leads=60)
    check_a_start_with_changed_funnel_tables(database, monkeypatch)
