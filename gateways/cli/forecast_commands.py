"""`crm forecast`: closed won, commit, best case, weighted pipeline, target, attainment and gap per month or
quarter of the installation's zone (CRM_TIME_ZONE), grouped by owner, team, region or pipeline, as of an
instant; `crm forecast predict` the history-based forecast of the next periods by several methods, and `crm
forecast backtest` what they forecast at a past instant against what closed since (forecast_outlook_commands).
The services are imported when the command runs (see gateways/cli/main.py)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gateways.cli.common import console, crm_application, fail, note_freshness, parse_instant, read_store
from gateways.cli.output import AsCsv, AsJson, AsOf, Bom, Output, TableName

Grain = Annotated[str | None, typer.Option(help="month or quarter (default quarter): every period holding a deal "
                                                "or a target then.")]
By = Annotated[str | None, typer.Option(help="One row per owner, team (the owner's then), region (the customer's) "
                                             "or pipeline.")]
PeriodOption = Annotated[str | None, typer.Option(help="Only this month or quarter, e.g. 2026-03 or 2026-Q1.")]


forecast_app = typer.Typer(help="The sales forecast as of an instant; `predict` and `backtest` the history-based "
                                    "forecast.", invoke_without_command=True)


@forecast_app.callback()
def forecast(ctx: typer.Context, as_of: AsOf = "now", period: PeriodOption = None, grain: Grain = None, by: By = None,
             as_json: AsJson = False, as_csv: AsCsv = False, table: TableName = None, bom: Bom = False) -> None:
    """The sales forecast as of an instant (default now), by period of the installation's time zone.
    CSV tables: periods (default), unconverted."""
    if ctx.invoked_subcommand is not None:
        return
    from gateways.report_tables import forecast_tables
    from projections.forecast import ForecastQueries
    from projections.rates import RateQueries
    from services.settings import time_zone_from_environment

    output = Output(as_json, as_csv, table, bom)
    if period is not None and grain is not None:
        raise fail("give either --period or --grain: a period names its own grain")
    instant, zone = parse_instant(as_of), time_zone_from_environment()
    with crm_application() as crm, read_store(crm) as store:
        note_freshness(crm, store, ["forecast"])
        money = RateQueries(store).conversion(crm.reporting_currency, instant)
        try:
            report = ForecastQueries(store).report(instant, grain or "quarter", by, period, zone, money).to_dict()
        except ValueError as error:
            raise fail(str(error)) from None
    output.show(report, lambda: forecast_tables(report), lambda: _print(report))


def _register() -> None:
    from gateways.cli.forecast_outlook_commands import backtest, predict

    forecast_app.command("predict")(predict)
    forecast_app.command("backtest")(backtest)


_register()


def _print(report: dict[str, Any]) -> None:
    from rich.table import Table

    from gateways.cli.render import money_note

    by = report["by"]
    table = Table("Period", *([by] if by else []), "Deals", "Closed won", "Commit", "Best case", "Pipeline",
                  "Weighted", "Target", "Attainment", "Gap",
                  title=f"Forecast by {report['grain']}{f' and {by}' if by else ''} as of {report['as_of']} "
                        f"({report['zone']})", title_justify="left")
    for row in report["rows"]:
        group = [row["group"] or "(none)"] if by else []
        table.add_row(row["period"], *group, str(row["deals"]),
                      *(_money(row[name]) for name in ("closed_won_cents", "commit_cents", "best_case_cents",
                                                       "pipeline_cents", "weighted_pipeline_cents", "target_cents")),
                      "–" if row["attainment_percent"] is None else f"{row['attainment_percent']} %",
                      _money(row["gap_cents"]))
    console.print(table)
    if report["undated"]:
        console.print(f"{report['undated']} open deal(s) have no expected close date and are in no period.")
    console.print(money_note(report["currency"], report["unconverted"]))


def _money(cents: int | None) -> str:
    return "–" if cents is None else f"{cents / 100:,.2f}"
