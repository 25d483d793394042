"""The campaigns' and the tickets' summed tables in a bulk rebuild: `campaigns_steps` and `campaigns_tallies` derived from the
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
from projections.tables import Table
from projections.tickets import set_based as tickets_fold
from projections.tickets import ticket_tallies as tickets_summed

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


def tickets_summed_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The tickets' summed tables (`projections.tickets.ticket_tallies.derive`) from the fact tables' steps,
    read under the tables' own names (temporary views), as `tickets_<table>_rows`."""
    for table, step in tickets_fold.FACT_STEPS.items():
        con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM {step}")
    derived = tickets_summed.derive(lambda sql, params: con.execute(sql, params).fetchall())
    for table in tickets_fold.FACT_STEPS:
        con.execute(f"DROP VIEW {table}")
    for table, found in zip(tickets_summed.SUMMED_TABLES, derived):
        _register(con, table, [row if isinstance(row, dict) else row._asdict() for row in found],
                  tickets_fold.TABLES[table.name])


def _register(con: duckdb.DuckDBPyConnection, table: Table, rows: list[dict[str, Any]], name: str) -> None:
    json = set(table.json_columns)
    arrow = pa.Table.from_pylist([{k: orjson.dumps(v).decode() if k in json else v for k, v in row.items()}
                                  for row in rows],
                                 pa.schema([(column, _ARROW[kind]) for column, kind in table.columns]))
    con.register(f"{table.name}_arrow", arrow)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {table.name}_arrow")
    con.unregister(f"{table.name}_arrow")
