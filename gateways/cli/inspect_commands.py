"""`crm inspect slippage | changes | inactive | winloss` (and `crm winloss`): the "changes since last week" view
of the pipeline — close dates moved out of a period or pulled in, amounts and stages changed between two
instants, deals without activity for N days — and win/loss as of an instant, all in the installation's zone
(CRM_TIME_ZONE, or --tz). The services are imported when a command runs (see gateways/cli/main.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from typing import Annotated, Any

import typer

from gateways.cli.common import console, crm_application, fail, note_freshness, parse_instant, read_store, report_zone
from gateways.cli.output import AsCsv, AsJson, AsOf, Bom, Output, TableName

inspect_app = typer.Typer(help="Pipeline inspection: slippage, changes and inactive deals between two instants; "
                               "win/loss as of an instant.", no_args_is_help=True)
From = Annotated[str | None, typer.Option("--from", help="The window's start (excluded; ISO 8601, a plain date is "
                                                         "midnight in the zone); default a week before --to.")]
To = Annotated[str, typer.Option("--to", help="The window's end (included); default now.")]
Owner = Annotated[str | None, typer.Option(help="Only deals of this owner (as of the end).")]
Team = Annotated[str | None, typer.Option(help="Only deals whose owner is in this team (as of the end).")]
PipelineOption = Annotated[str | None, typer.Option("--pipeline", help="Only deals of this pipeline.")]
Tz = Annotated[str | None, typer.Option("--tz", help="The time zone of periods and of instants without one "
                                                     "(default CRM_TIME_ZONE).")]
Grain = Annotated[str, typer.Option(help="month or quarter: the periods a moved close date is classified by.")]


def _window(start: str | None, end: str, zone: tzinfo) -> tuple[datetime, datetime]:
    stop = parse_instant(end, zone)
    return (parse_instant(start, zone) if start is not None else stop - timedelta(days=7)), stop


def _run(names: list[str], ask: Callable[[Any, Any], dict[str, Any]]) -> dict[str, Any]:
    """`ask(crm, store)` on the read store, after noting the read models' freshness; ValueError → exit 1."""
    with crm_application() as crm, read_store(crm) as store:
        note_freshness(crm, store, names)
        try:
            return ask(crm, store)
        except ValueError as error:
            raise fail(str(error)) from None


def _queries(crm: Any, store: Any) -> Any:
    from projections.inspection import InspectionQueries
    return InspectionQueries(store, crm.keys.unseal_all_marks)


def _where(owner: str | None, team: str | None, pipeline: str | None) -> Any:
    from projections.inspection import Where
    return Where(owner, team, pipeline)


@inspect_app.command()
def slippage(start: From = None, end: To = "now", grain: Grain = "quarter", owner: Owner = None, team: Team = None,
             pipeline: PipelineOption = None, tz: Tz = None, as_json: AsJson = False, as_csv: AsCsv = False,
             table: TableName = None, bom: Bom = False) -> None:
    """Deals whose expected close date moved between --from and --to: pushed to a later period, pulled into an
    earlier one, moved within one, or set; old and new date, who and why. CSV tables: deals, changes."""
    from gateways.report_tables import slippage_tables

    output, zone = Output(as_json, as_csv, table, bom), report_zone(tz)
    a, b = _window(start, end, zone)
    report = _run(["inspection"], lambda crm, store: _queries(crm, store).slippage(
        a, b, grain, zone, _where(owner, team, pipeline)))
    output.show(report, lambda: slippage_tables(report), lambda: _print_slippage(report))


@inspect_app.command()
def changes(start: From = None, end: To = "now", owner: Owner = None, team: Team = None,
            pipeline: PipelineOption = None, tz: Tz = None, as_json: AsJson = False, as_csv: AsCsv = False,
            table: TableName = None, bom: Bom = False) -> None:
    """Amount changes and stage moves (wins, losses, reopenings) between --from and --to, by whom.
    CSV tables: amounts, stages."""
    from gateways.report_tables import changes_tables

    output, zone = Output(as_json, as_csv, table, bom), report_zone(tz)
    a, b = _window(start, end, zone)
    report = _run(["inspection"], lambda crm, store: _queries(crm, store).changes(a, b, zone,
                                                                                   _where(owner, team, pipeline)))
    output.show(report, lambda: changes_tables(report), lambda: _print_changes(report))


@inspect_app.command()
def inactive(as_of: AsOf = "now", days: Annotated[int, typer.Option(help="Days (× 24 h) without activity.")] = 14,
             owner: Owner = None, team: Team = None, pipeline: PipelineOption = None, tz: Tz = None,
             as_json: AsJson = False, as_csv: AsCsv = False, table: TableName = None, bom: Bom = False) -> None:
    """Open deals without activity for --days as of an instant: no event of their own, no touch and no ticket
    event of their customer. CSV table: deals."""
    from gateways.report_tables import inactive_tables

    output, zone = Output(as_json, as_csv, table, bom), report_zone(tz)
    instant = parse_instant(as_of, zone)
    report = _run(["inspection"], lambda crm, store: _queries(crm, store).inactive(instant, days, zone,
                                                                                    _where(owner, team, pipeline)))
    output.show(report, lambda: inactive_tables(report), lambda: _print_inactive(report))


@inspect_app.command("winloss")
def winloss(as_of: AsOf = "now",
            by: Annotated[str | None, typer.Option(help="One row per stage (lost or won from), owner, team, "
                                                        "product, period (of the close), pipeline or competitor.")]
            = None,
            grain: Annotated[str | None, typer.Option(help="month or quarter (default): the periods of closes.")]
            = None,
            period: Annotated[str | None, typer.Option(help="Only deals closed in this month or quarter.")] = None,
            owner: Owner = None, team: Team = None, pipeline: PipelineOption = None, tz: Tz = None,
            as_json: AsJson = False, as_csv: AsCsv = False, table: TableName = None, bom: Bom = False) -> None:
    """Won and lost deals as of an instant: counts, values, win rate, loss reasons and competitors, in all and per
    --by. CSV tables: groups, reasons, competitors, deals, unconverted."""
    from gateways.report_tables import winloss_tables
    from projections.rates import RateQueries

    output, zone = Output(as_json, as_csv, table, bom), report_zone(tz)
    instant = parse_instant(as_of, zone)

    def ask(crm: Any, store: Any) -> dict[str, Any]:
        money = RateQueries(store).conversion(crm.reporting_currency, instant)
        return _queries(crm, store).winloss(instant, by, grain, zone, _where(owner, team, pipeline), money, period)
    report = _run(["inspection", "rates"], ask)
    output.show(report, lambda: winloss_tables(report), lambda: _print_winloss(report))


# --- terminal tables -------------------------------------------------------------------------------------


def _table(title: str, *columns: str) -> Any:
    from rich.table import Table
    return Table(*columns, title=title, title_justify="left")


def _window_title(what: str, report: dict[str, Any]) -> str:
    return f"{what} in ({report['from']}, {report['to']}] ({report['time_zone']})"


def _money(cents: int | None) -> str:
    return "–" if cents is None else f"{cents / 100:,.2f}"


def _print_slippage(report: dict[str, Any]) -> None:
    table = _table(_window_title(f"Close dates moved (by {report['grain']})", report), "Deal", "Customer", "Owner",
                   "Old", "New", "Direction", "Who", "Why")
    for d in report["deals"]:
        last = d["changes"][-1]
        table.add_row(d["deal"], d["customer"], d["owner"], f"{d['old_close'] or '–'} ({d['old_period'] or '–'})",
                      f"{d['new_close']} ({d['new_period']})", d["direction"], last["actor"], last["reason"])
    console.print(table)
    console.print(", ".join(f"{name}: {count}" for name, count in report["counts"].items()))


def _print_changes(report: dict[str, Any]) -> None:
    amounts = _table(_window_title("Amounts changed", report), "Deal", "Customer", "Owner", "Currency", "Before",
                     "After", "Change", "Who")
    for d in report["amounts"]:
        amounts.add_row(d["deal"], d["customer"], d["owner"], d["currency"], _money(d["old_amount_cents"]),
                        _money(d["new_amount_cents"]), _money(d["delta_cents"]),
                        ", ".join(dict.fromkeys(c["actor"] for c in d["changes"])))
    stages = _table(_window_title("Stages changed", report), "Deal", "Customer", "Owner", "From", "To", "Moves")
    for d in report["stages"]:
        stages.add_row(d["deal"], d["customer"], d["owner"], d["from_stage"], d["to_stage"],
                       "; ".join(f"{m['from_stage']}→{m['to_stage']} ({m['actor']})" for m in d["moves"]))
    console.print(amounts)
    console.print(stages)


def _print_inactive(report: dict[str, Any]) -> None:
    table = _table(f"Open deals without activity for {report['days']} days as of {report['as_of']} "
                   f"({report['time_zone']})", "Deal", "Customer", "Owner", "Stage", "Last activity", "Days")
    for d in report["deals"]:
        table.add_row(d["deal"], d["customer"], d["owner"], d["stage"],
                      f"{d['last_activity_at']} ({d['last_activity']})", str(d["days_inactive"]))
    console.print(table)


def _print_winloss(report: dict[str, Any]) -> None:
    from gateways.cli.render import money_note

    by = report["by"]
    table = _table(f"Win/loss{f' by {by}' if by else ''} as of {report['as_of']} ({report['time_zone']})",
                   *([by] if by else []), "Won", "Won value", "Lost", "Lost value", "Win rate", "Lost to",
                   "Loss reasons")
    for row in [*report["groups"], {"group": "(all)", **report["totals"]}] if by else [report["totals"]]:
        table.add_row(*([row["group"] or "(none)"] if by else []), str(row["won"]), _money(row["won_cents"]),
                      str(row["lost"]), _money(row["lost_cents"]),
                      "–" if row["win_rate_percent"] is None else f"{row['win_rate_percent']} %",
                      _top(row["competitors"], "competitor"), _top(row["reasons"], "reason"))
    console.print(table)
    console.print(money_note(report["currency"], report["unconverted"]))


def _top(counted: list[dict[str, Any]], field: str, shown: int = 3) -> str:
    """The first `shown` values with their deals (most first), and how many more (--json or --csv has them all)."""
    more = f", +{len(counted) - shown} more" if len(counted) > shown else ""
    return ", ".join(f"{c[field]} ({c['deals']})" for c in counted[:shown]) + more
