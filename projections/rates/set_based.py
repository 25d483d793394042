"""The exchange-rate read model folded set-based: SQL over the flat log (`log_events`) that builds the very rows
the handlers (`handlers`) write, for a bulk rebuild (issue 14; the funnel's `set_based` explains the form).

A pair's row for a date is its last figure in log order (a correction replaces the quote, as `Rows.put` does);
the rate is the Decimal's text as stored, which is `str` of the Decimal the handlers read.
"""

from __future__ import annotations

from projections.rates.rows import RATES
from projections.tables import micros_sql

_FIELDS = ("currency", "quote", "rate", "source", "occurred_at")

FIGURES = f"""
SELECT "position" AS position, {', '.join(f"json_extract_string(state, '$.{name}') AS {name}" for name in _FIELDS)}
FROM log_events WHERE kind = 'ExchangeRate' AND event IN ('Quoted', 'Corrected')
"""

ROWS = f"""
SELECT currency, quote, valid_at, rate, source
FROM (SELECT currency, quote, {micros_sql('occurred_at')} AS valid_at, rate, source,
             ROW_NUMBER() OVER (PARTITION BY currency, quote, {micros_sql('occurred_at')} ORDER BY position DESC) AS nth
      FROM rates_figures) AS f
WHERE nth = 1
"""

STEPS: tuple[tuple[str, str], ...] = (("rates_figures", FIGURES), ("rates_rows", ROWS))
"""The fold, in order (portable as it is: `sqlglot.transpile(sql, read="duckdb", write=…)`)."""
PORTABLE_STEPS = STEPS
TABLES: dict[str, str] = {RATES.name: "rates_rows"}
