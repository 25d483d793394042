"""`crm rates`: import a file of exchange rates (dated, into the reporting currency) and list them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from domain.base import Meta
from gateways.cli.common import console, crm_application, fail, note_freshness, parse_instant, read_store
from gateways.cli.output import AsCsv, AsJson, AsOf, Bom, Output
from gateways.cli.render import shown
from gateways.report_tables import single
from projections.rates import RateQueries
from services.history.exchange_rate_files import RateFileError, read_rates, record_rates, skipped_columns

rates_app = typer.Typer(help="Exchange rates into the reporting currency (CRM_REPORTING_CURRENCY, default CNY).",
                        no_args_is_help=True)


@rates_app.command("import")
def import_rates(
    file: Annotated[Path, typer.Argument(help="CSV: date,currency,rate[,source] or Date,USD,JPY,… (ECB).",
                                         exists=True, dir_okay=False)],
    quote: Annotated[str | None, typer.Option(help="The currency the rates are in (default: the reporting "
                                                   "currency).")] = None,
    source: Annotated[str | None, typer.Option(help="Where the rates come from (default: the file's name).")] = None,
    inverse: Annotated[bool, typer.Option("--inverse", help="Figures are units of the currency per one unit of "
                                                            "the quote (the ECB's 1 EUR = 1.08 USD).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and count; write nothing.")] = False,
    actor: Annotated[str, typer.Option(help="Recorded as the events' actor.")] = "rates-import",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Record each rate of FILE as of its date (again: unchanged; another figure: a correction)."""
    with crm_application() as crm:
        try:
            commands = read_rates(file.read_text(encoding="utf-8"), quote or crm.reporting_currency,
                                  source or file.name, inverse)
        except (RateFileError, UnicodeDecodeError) as error:
            raise fail(f"{file}: {error}; nothing was recorded") from None
        report = record_rates(crm, commands, Meta.now(actor), dry_run)
        skipped = skipped_columns(file.read_text(encoding="utf-8"))
    if as_json:
        typer.echo(orjson.dumps({"dry_run": dry_run, **report.to_dict(), "skipped_columns": skipped}).decode())
        return
    if skipped:
        console.print(f"Skipped the columns of currencies ISO 4217 does not list: {', '.join(skipped)}.")
    outcomes = ", ".join(f"{n} {outcome}" for outcome, n in sorted(report.outcomes.items())) or "none written"
    span = f" from {report.first} to {report.last}" if report.first else ""
    console.print(f"{'Would record' if dry_run else 'Read'} {report.rates} rates of "
                  f"{len(report.currencies)} currencies{span}{'' if dry_run else ': ' + outcomes}.")


@rates_app.command("list")
def list_rates(
    as_of: AsOf = "now",
    currency: Annotated[str | None, typer.Option(help="Only this currency.")] = None,
    history: Annotated[bool, typer.Option("--history", help="Every recorded date, newest first, not only the "
                                                            "rates in force.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many rows with --history.")] = 1000,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
    bom: Bom = False,
) -> None:
    """The rates into the reporting currency in force at an instant (default now), or every one recorded."""
    output = Output(as_json, as_csv, None, bom)
    instant = parse_instant(as_of)
    with crm_application() as crm, read_store(crm) as store:
        note_freshness(crm, store, ["rates"])
        queries, quote = RateQueries(store), crm.reporting_currency
        if history:
            rows = [r.to_dict() for r in queries.listing(quote, currency, limit)]
        else:
            rows = [{"currency": c, "quote": quote, "valid_from": r.valid_from.isoformat(), "rate": str(r.rate)}
                    for c, r in sorted(queries.in_force(quote, instant).items()) if currency in (None, c)]
    output.show({"quote": quote, **({} if history else {"as_of": instant.isoformat()}), "rates": rows},
                lambda: single("rates", rows), lambda: _print(rows, quote, instant, history))


def _print(rows: list[dict[str, str]], quote: str, instant: datetime, history: bool) -> None:
    title = f"Rates into {quote}" + ("" if history else f" in force at {shown(instant)}")
    table = Table(title=title, title_justify="left")
    for column in ("Currency", "Valid from", "Rate", *(("Source",) if history else ())):
        table.add_column(column)
    for row in rows:
        table.add_row(row["currency"], row["valid_from"], row["rate"], *((row["source"],) if history else ()))
    console.print(table)
