"""The tickets' set-based fold as text: it reads the events the handlers handle, gives every table its rows,
and Spark can be given the same SQL."""

from __future__ import annotations

import pytest
import sqlglot

from projections.tickets import TicketsReadModel
from projections.tickets.set_based import _EVENTS, PORTABLE_STEPS, STEPS, TABLES
from projections.tickets.ticket_tallies import SUMMED_TABLES


def test_the_fold_reads_the_events_the_handlers_handle_and_fills_every_table() -> None:
    model = TicketsReadModel()
    assert set(_EVENTS) == {cls.__qualname__ for cls in model.handlers()}
    assert set(TABLES) == {table.name for table in model.tables}
    summed = {TABLES[table.name] for table in SUMMED_TABLES}  # made in Python after the last step
    assert set(TABLES.values()) - summed <= {name for name, _ in STEPS}


@pytest.mark.parametrize(("name", "sql"), PORTABLE_STEPS)
def test_each_step_transpiles_to_spark(name: str, sql: str) -> None:
    spark = sqlglot.transpile(sql, read="duckdb", write="spark")[0]
    assert "ARRAY(" not in spark and "EPOCH" not in spark and "ARG_MIN" not in spark, spark
