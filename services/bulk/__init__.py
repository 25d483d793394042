"""The bulk rebuild path (issue 14): the log read once, fast, and folded set-based (DuckDB, Spark)."""
