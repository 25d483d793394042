"""The external ids' set-based fold as text: it reads the creations the handlers file, the bare id is
`bare_id`'s, and Spark can be given the same SQL."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot

from domain.external_ids import bare_id
from projections.external_ids.handlers import KINDS
from projections.external_ids.set_based import _KINDS, PORTABLE_STEPS, ROWS


def test_the_fold_reads_the_creations_the_handlers_file() -> None:
    assert _KINDS == {cls.__qualname__: kind for cls, kind in KINDS.items()}


@pytest.mark.parametrize("external_id", ["salesforce:006A", "salesforce:006:A", "salesforce:", "bare"])
def test_the_bare_id_is_what_follows_the_first_colon(external_id: str) -> None:
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE external_ids_creations AS SELECT 'deal' AS kind, ? AS external_id, "
                "'r' AS record_id, '2026-01-02T03:04:05+00:00' AS occurred_at", [external_id])
    assert con.execute(ROWS).fetchone()[2] == bare_id(external_id)  # type: ignore[index]


@pytest.mark.parametrize(("name", "sql"), PORTABLE_STEPS)
def test_each_step_transpiles_to_spark(name: str, sql: str) -> None:
    spark = sqlglot.transpile(sql, read="duckdb", write="spark")[0]
    assert "EPOCH" not in spark, spark
