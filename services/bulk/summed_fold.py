"""The campaigns' summed tables in a bulk rebuild: `campaigns_steps` and `campaigns_tallies` derived from the
fact tables the fold has just built in DuckDB (`projections.campaigns.summed_tables.derive`), handed back to
the SQL as relations for the runner to write like any other step's rows.

Why Python here: a customer's share of the report needs its first win and its first and last touch among all
its facts (`domain.marketing`), rules the read model applies per customer; `derive` applies them to the fact
tables alone, so the bulk path writes what the handlers keep without decoding an event (its equality with
the handlers: `tests/unit/projections/campaigns/test_summed.py`, and the bulk tests, table by table).
"""

from __future__ import annotations

from typing import Any

import duckdb
import orjson
import pyarrow as pa

from projections.campaigns import set_based
from projections.campaigns.summed_tables import STEPS, TALLIES, derive

_ARROW = {"TEXT": pa.string(), "BIGINT": pa.int64(), "INTEGER": pa.int64()}


def summed_tables(con: duckdb.DuckDBPyConnection) -> None:
    """`campaigns_steps_rows` and `campaigns_tallies_rows` from the fact tables' steps; none derived when the
    log breaks a rule the handlers assert (the runner hands the read model over to them next)."""
    if any(con.execute(sql).fetchall()[0][0] is not None for sql in set_based.CHECKS.values()):
        rows: tuple[list[Any], list[Any]] = ([], [])
    else:
        rows = derive(lambda sql, params: con.execute(sql, params).fetchall())
    for table, found in zip((STEPS, TALLIES), rows):
        arrow = pa.Table.from_pylist([{**row, "deltas": orjson.dumps(row["deltas"]).decode()} for row in found],
                                     pa.schema([(name, _ARROW[kind]) for name, kind in table.columns]))
        con.register(f"{table.name}_arrow", arrow)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {set_based.TABLES[table.name]} AS SELECT * FROM {table.name}_arrow")
        con.unregister(f"{table.name}_arrow")
