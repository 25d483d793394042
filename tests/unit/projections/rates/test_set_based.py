"""The rates' set-based fold as text: it reads the events the handlers handle, and Spark can be given the same
SQL."""

from __future__ import annotations

import pytest
import sqlglot

from projections.rates import RATE_EVENTS
from projections.rates.set_based import FIGURES, PORTABLE_STEPS


def test_the_fold_reads_the_events_the_handlers_handle() -> None:
    assert all(f"'{cls.__qualname__.partition('.')[2]}'" in FIGURES for cls in RATE_EVENTS)
    assert {cls.__qualname__.partition(".")[0] for cls in RATE_EVENTS} == {"ExchangeRate"}


@pytest.mark.parametrize(("name", "sql"), PORTABLE_STEPS)
def test_each_step_transpiles_to_spark(name: str, sql: str) -> None:
    spark = sqlglot.transpile(sql, read="duckdb", write="spark")[0]
    assert "EPOCH" not in spark, spark
