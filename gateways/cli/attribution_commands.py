"""`crm attribution`: won revenue credited to campaigns, channels or variants under a multi-touch model as of an
instant; `crm cohorts`: CAC and CLV per acquisition channel and month or quarter of registration in the
installation's zone (or `--tz`). The services are imported when the command runs (see gateways/cli/main.py)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gateways.cli.common import console, crm_application, fail, note_freshness, parse_instant, read_store, report_zone
from gateways.cli.output import AsCsv, AsJson, AsOf, Bom, Output, TableName

Model = Annotated[str, typer.Option(help="first_touch, last_touch, linear, u_shaped, w_shaped or time_decay.")]
By = Annotated[str, typer.Option(help="campaign, channel or variant (a campaign's).")]
HalfLife = Annotated[float, typer.Option(help="time_decay: a touch's weight halves every this many days before "
                                              "the win.")]
Grain = Annotated[str, typer.Option(help="month or quarter of registration.")]
Zone = Annotated[str | None, typer.Option("--tz", help="The time zone of the cohorts' months and quarters (an IANA "
                                                       "name); default the installation's (CRM_TIME_ZONE).")]


def attribution(as_of: AsOf = "now", model: Model = "linear", by: By = "campaign", half_life_days: HalfLife = 7.0,
                as_json: AsJson = False, as_csv: AsCsv = False, table: TableName = None, bom: Bom = False) -> None:
    """Won revenue shared over each deal's campaign touches before its win, as of an instant (default now).
    CSV tables: credits (default), unconverted."""
    from gateways.report_tables import attribution_tables
    from projections.attribution import AttributionQueries
    from projections.rates import RateQueries

    output = Output(as_json, as_csv, table, bom)
    instant = parse_instant(as_of)
    with crm_application() as crm, read_store(crm) as store:
        note_freshness(crm, store, ["attribution", "rates"])
        money = RateQueries(store).conversion(crm.reporting_currency, instant)
        try:
            report = AttributionQueries(store).credits(instant, model, by, half_life_days, money)
        except ValueError as error:
            raise fail(str(error)) from None
    output.show(report, lambda: attribution_tables(report), lambda: _print_credits(report))


def cohorts(as_of: AsOf = "now", grain: Grain = "month", tz: Zone = None, as_json: AsJson = False,
            as_csv: AsCsv = False, table: TableName = None, bom: Bom = False) -> None:
    """CAC and CLV per acquisition channel and cohort (the month or quarter customers registered in), as of an
    instant (default now). CSV tables: cohorts (default), unconverted."""
    from gateways.report_tables import cohort_tables
    from projections.attribution import AttributionQueries
    from projections.rates import RateQueries

    output = Output(as_json, as_csv, table, bom)
    zone = report_zone(tz)
    instant = parse_instant(as_of, zone)
    with crm_application() as crm, read_store(crm) as store:
        note_freshness(crm, store, ["attribution", "rates"])
        money = RateQueries(store).conversion(crm.reporting_currency, instant)
        try:
            report = AttributionQueries(store).cohorts(instant, grain, zone, money)
        except ValueError as error:
            raise fail(str(error)) from None
    output.show(report, lambda: cohort_tables(report), lambda: _print_cohorts(report))


def _print_credits(report: dict[str, Any]) -> None:
    from rich.table import Table

    from gateways.cli.render import money_note

    by = report["by"]
    decay = f", half-life {report['half_life_days']:g} days" if report["model"] == "time_decay" else ""
    columns = {"campaign": ("Campaign", "Channel"), "channel": ("Channel",), "variant": ("Campaign", "Variant")}[by]
    table = Table(*columns, "Credited", "Deals", title=f"Won revenue by {by}, {report['model']}{decay}, as of "
                                                       f"{report['as_of']}", title_justify="left")
    for row in report["rows"]:
        cells = {"campaign": (row.get("name"), row.get("channel")), "channel": (row["channel"],),
                 "variant": (row.get("name"), row.get("variant") or "(none)")}[by]
        table.add_row(*(cell or "(no campaign)" for cell in cells), _money(row["credited_cents"]),
                      str(row["credited_deals"]))
    console.print(table)
    console.print(f"{report['won_deals']} won deal(s), {_money(report['won_revenue_cents'])} {report['currency']}.")
    console.print(money_note(report["currency"], report["unconverted"]))


def _print_cohorts(report: dict[str, Any]) -> None:
    from rich.table import Table

    from gateways.cli.render import money_note

    table = Table("Channel", "Cohort", "Customers", "Buyers", "Cost", "CAC", "Won", "CLV",
                  title=f"Acquisition cohorts by {report['grain']} ({report['zone']}) as of {report['as_of']}",
                  title_justify="left")
    for row in report["cohorts"]:
        table.add_row(row["channel"], row["period"], str(row["customers"]), str(row["buyers"]),
                      *(_money(row[name]) for name in ("cost_cents", "cac_cents", "won_cents", "clv_cents")))
    console.print(table)
    console.print(money_note(report["currency"], report["unconverted"]))


def _money(cents: int | None) -> str:
    return "–" if cents is None else f"{cents / 100:,.2f}"
