"""How a `crm` report prints: rich tables (default), `--json` (the whole report) or `--csv` (one flat
table of it, see `gateways.report_tables`); the options every report command shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import orjson
import typer

from gateways.report_tables import TableMaker, UnknownTable, table_csv

AsOf = Annotated[str, typer.Option("--as-of", help="The instant (ISO 8601, UTC unless it says) or 'now'.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the whole report as JSON instead of tables.")]
AsCsv = Annotated[bool, typer.Option("--csv", help="Print one table of the report as CSV (UTF-8); see --table.")]
TableName = Annotated[str | None, typer.Option("--table", help="With --csv: which table (default: the report's "
                                                                "main one; an unknown name lists them).")]
Bom = Annotated[bool, typer.Option("--bom", help="With --csv: start with a UTF-8 byte-order mark, so that Excel "
                                                 "reads Chinese text right when the file is double-clicked.")]
LIST_LIMIT = 20  # items a list inside a report shows unless asked (a stuck list once ran to 7,158 lines of JSON)


class Output:
    """The output options of one report command."""

    def __init__(self, as_json: bool = False, as_csv: bool = False, table: str | None = None,
                 bom: bool = False) -> None:
        if as_json and as_csv:
            raise typer.BadParameter("choose one of --json and --csv", param_hint="--csv")
        if (table is not None or bom) and not as_csv:
            raise typer.BadParameter("--table and --bom go with --csv", param_hint="--table")
        self.as_json, self.as_csv, self.table, self.bom = as_json, as_csv, table, bom

    def show(self, data: dict[str, Any], tables: TableMaker, render: Callable[[], Any]) -> None:
        """Print `data` as JSON, one of `tables()` as CSV, or call `render` for the terminal."""
        if self.as_json:
            typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        elif self.as_csv:
            try:
                text = table_csv(tables(), self.table, self.bom)
            except UnknownTable as error:
                raise typer.BadParameter(str(error), param_hint="--table") from None
            typer.echo(text.encode("utf-8"), nl=False)  # bytes: UTF-8 whatever the terminal's locale
        else:
            render()


def percent(value: float | None, note: str | None = None) -> str:
    """A rate for the terminal: "n/a (why)" when it is missing, never a made-up 0 % or 100 %."""
    if value is None:
        return f"n/a ({note})" if note else "–"
    return f"{value:.1%}"
