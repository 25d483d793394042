"""`crm forecast predict` and `crm forecast backtest`: the history-based forecast of the next periods by each
method (weighted, pipeline_conversion, trend, seasonal, naive), with its band or why there is none, and what
they forecast at a past instant against what closed since, with each method's errors. Periods are the
installation's zone's (CRM_TIME_ZONE, or --tz). The services are imported when the command runs."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

import typer

from gateways.cli.common import console, crm_application, fail, note_freshness, parse_instant, read_store, \
    report_zone
from gateways.cli.output import AsCsv, AsJson, Bom, Output, TableName

Periods = Annotated[int, typer.Option("--periods", help="How many whole periods from --as-of to forecast (1–24).")]
Grain = Annotated[str, typer.Option("--grain", help="month (default) or quarter.")]
Methods = Annotated[list[str] | None, typer.Option("--method", help="weighted, pipeline_conversion, trend, seasonal "
                                                                    "or naive; repeatable (default all).")]
Level = Annotated[int, typer.Option("--level", help="The band's confidence in percent (50–99).")]
Tz = Annotated[str | None, typer.Option("--tz", help="The time zone of the periods and of instants without an "
                                                     "offset (an IANA name); default CRM_TIME_ZONE.")]


def predict(as_of: Annotated[str, typer.Option("--as-of", help="The instant the forecast is made at (ISO 8601 or "
                                                               "'now').")] = "now",
            periods: Periods = 3, grain: Grain = "month", method: Methods = None, level: Level = 80, tz: Tz = None,
            as_json: AsJson = False, as_csv: AsCsv = False, table: TableName = None, bom: Bom = False) -> None:
    """What each method forecasts will be won in the next whole periods, as of an instant, with its band (or
    "not enough history"). CSV tables: periods (default), errors, history, unconverted."""
    output, zone = Output(as_json, as_csv, table, bom), report_zone(tz)
    instant = parse_instant(as_of, zone)
    report = _run(lambda queries, money: queries.forecast(instant, grain, periods, method, level, zone,
                                                          money(instant)))
    _show(output, report)


def backtest(as_of: Annotated[str, typer.Option("--as-of", help="The past instant the forecast was made at.")],
             actual_as_of: Annotated[str, typer.Option("--actual-as-of", help="What closed, as known at this later "
                                                                              "instant (default now).")] = "now",
             periods: Periods = 3, grain: Grain = "month", method: Methods = None, level: Level = 80, tz: Tz = None,
             as_json: AsJson = False, as_csv: AsCsv = False, table: TableName = None, bom: Bom = False) -> None:
    """What each method forecast at a past instant for the following whole periods, beside what was won in
    them, and each method's MAE, MAPE, bias and band coverage over the periods ended since. CSV tables:
    periods (default), errors, history, actuals, unconverted."""
    output, zone = Output(as_json, as_csv, table, bom), report_zone(tz)
    instant, actual = parse_instant(as_of, zone), parse_instant(actual_as_of, zone)
    report = _run(lambda queries, money: queries.backtest(instant, actual, grain, periods, method, level, zone,
                                                          money(instant), money(actual)))
    _show(output, report)


def _run(ask: Any) -> dict[str, Any]:
    """`ask(queries, money_at)` on the read store: bad input exits 1 with its sentence."""
    from projections.forecast.outlook import OutlookQueries
    from projections.rates import RateQueries

    with crm_application() as crm, read_store(crm) as store:
        note_freshness(crm, store, ["forecast"])
        rates = RateQueries(store)

        def money(instant: datetime) -> Any:
            return rates.conversion(crm.reporting_currency, instant)
        try:
            return ask(OutlookQueries(store), money).to_dict()  # type: ignore[no-any-return]
        except ValueError as error:
            raise fail(str(error)) from None


def print_backtest(crm: Any, store: Any, as_of: datetime, periods: int) -> None:
    """The demo's backtest: each method's forecast made at `as_of` for `periods` months beside what closed since,
    in the installation's zone, and the command that asks it again."""
    from projections.forecast.outlook import OutlookQueries
    from projections.rates import RateQueries
    from services.settings import time_zone_from_environment

    zone, now, rates = time_zone_from_environment(), datetime.now(timezone.utc), RateQueries(store)
    report = OutlookQueries(store).backtest(as_of, now, "month", periods, None, 80, zone,
                                            rates.conversion(crm.reporting_currency, as_of),
                                            rates.conversion(crm.reporting_currency, now)).to_dict()
    _print(report)
    console.print(f"Asked again by: crm forecast backtest --as-of {report['as_of']} --periods {periods}")


def _show(output: Output, report: dict[str, Any]) -> None:
    from gateways.report_tables import outlook_tables

    output.show(report, lambda: outlook_tables(report), lambda: _print(report))


def _print(report: dict[str, Any]) -> None:
    """The forecasts per period (with their bands when the terminal has room: ≈ 25 characters a period), then,
    for a backtest, each method's errors in a table of their own — one table of both wrapped every number of
    the demo's six months into "4,2…" in an 80-column terminal."""
    from rich import box
    from rich.table import Table

    from gateways.cli.render import money_note

    backtest = "actuals" in report
    title = (f"{'Backtest' if backtest else 'History-based forecast'} by {report['grain']} as of {report['as_of']}"
             + (f", actuals as of {report['actual_as_of']}" if backtest else "") + f" ({report['zone']}), "
             f"{report['level_percent']} % band")
    bands = console.width >= 14 + 25 * len(report["horizon"])
    table = Table("Method", title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for period in report["horizon"]:  # no column rules, amounts unbroken: six months of 9-digit amounts in 80
        table.add_column(period["period"], justify="right", no_wrap=True, min_width=9)
    if backtest:
        table.add_row("actual", *(_money(a["won_cents"]) + ("" if a["complete"] else " (so far)")
                                  for a in report["actuals"]))
    for method in report["methods"]:
        if method["available"]:
            table.add_row(method["method"], *(_point(row, bands) for row in method["periods"]))
    console.print(table)
    for method in report["methods"]:
        if not method["available"] and not backtest:  # a backtest says why in its errors table
            console.print(f"{method['method']}: {method['reason']}")
    if not bands:
        console.print(f"The {report['level_percent']} % bands: --json or --csv (a wider terminal shows them here).")
    if backtest:
        _print_errors(report)
    for method in report["methods"]:
        if method["basis"]:
            console.print(f"{method['method']}: {method['basis']}")
    console.print(money_note(report["currency"], report["unconverted"]))


def _print_errors(report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table("Method", "MAE", "MAPE", "Bias", "In band", title="Each method's error over the periods ended",
                  title_justify="left")
    for method in report["methods"]:
        if method["available"]:
            errors = method["errors"]
            table.add_row(method["method"], _money(errors["mae_cents"]), _percent(errors["mape_percent"]),
                          _money(errors["bias_cents"]), _percent(errors["coverage_percent"]))
        else:
            table.add_row(method["method"], method["reason"], "", "", "")
    console.print(table)


def _point(row: dict[str, Any], bands: bool = True) -> str:
    text = _money(row["forecast_cents"])
    if bands and row["lower_cents"] is not None:
        text += f"\n[{_money(row['lower_cents'])} – {_money(row['upper_cents'])}]"
    return text


def _money(cents: int | None) -> str:
    return "–" if cents is None else f"{cents / 100:,.0f}"


def _percent(text: str | None) -> str:
    return "–" if text is None else f"{text} %"
