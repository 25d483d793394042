"""`crm target set | list` and `crm team assign | list`: quotas per owner or team and month or quarter, and the
team each owner belongs to — the forecast's targets and its `--by team` (issue 15). Each change is an event
(`domain.targets`); a listing reads the forecast read model as of an instant."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gateways.cli.common import console, crm_application, note_freshness, parse_instant, read_store
from gateways.cli.output import AsCsv, AsJson, AsOf, Bom, Output

target_app = typer.Typer(help="Sales targets (quotas) per owner or team and month or quarter.", no_args_is_help=True)
team_app = typer.Typer(help="Which team each deal owner belongs to, over time.", no_args_is_help=True)
Reason = Annotated[str, typer.Option(help="Why (kept with the event).")]
Actor = Annotated[str, typer.Option(help="Who did it (recorded as the event's actor).")]
ExpectedVersion = Annotated[int | None, typer.Option(min=0, help="Refuse unless it is at this version (0: not "
                                                                 "set yet).")]


@target_app.command("set")
def set_target(
    scope: Annotated[str, typer.Argument(help="owner or team.")],
    name: Annotated[str, typer.Argument(help="The owner (as deals name them) or the team.")],
    period: Annotated[str, typer.Argument(help="A month (2026-03) or a quarter (2026-Q1) of the installation's "
                                               "time zone.")],
    amount: Annotated[str, typer.Argument(help="The amount to win, e.g. 500000.")],
    currency: Annotated[str, typer.Option(help="Its currency.")] = "CNY",
    reason: Reason = "",
    expected_version: ExpectedVersion = None,
    actor: Actor = "admin",
) -> None:
    """Set (or change) a target; a quarter without its own target sums its months'."""
    from services.commands.forecasts import SetTarget

    command = SetTarget(scope, name, period, amount, currency, reason, expected_version=expected_version)
    _run(command, actor, f"Target of {scope} {name} for {period}: {amount} {currency}")


@team_app.command("assign")
def assign_team(
    owner: Annotated[str, typer.Argument(help="The owner, as deals name them.")],
    team: Annotated[str, typer.Argument(help="The team from now on (\"\": none).")],
    reason: Reason = "",
    expected_version: ExpectedVersion = None,
    actor: Actor = "admin",
) -> None:
    """Put an owner in a team from now on (their deals count for it in `crm forecast --by team`)."""
    from services.commands.forecasts import AssignTeam

    _run(AssignTeam(owner, team, reason, expected_version=expected_version), actor,
         f"{owner} is in " + (f"team {team}" if team.strip() else "no team"))


@target_app.command("list")
def list_targets(as_of: AsOf = "now", as_json: AsJson = False, as_csv: AsCsv = False, bom: Bom = False) -> None:
    """Every target in force at an instant (default now), in its own currency."""
    from projections.forecast.queries import targets_in_force

    _listing(as_of, "targets", targets_in_force, ("Scope", "Name", "Period", "Amount", "Currency", "Since"),
             lambda row: (row["scope"], row["name"], row["period"], f"{row['amount_cents'] / 100:,.2f}",
                          row["currency"], row["since"]), Output(as_json, as_csv, None, bom))


@team_app.command("list")
def list_teams(as_of: AsOf = "now", as_json: AsJson = False, as_csv: AsCsv = False, bom: Bom = False) -> None:
    """Every owner's team at an instant (default now)."""
    from projections.forecast.queries import teams_in_force

    _listing(as_of, "teams", teams_in_force, ("Owner", "Team", "Since"),
             lambda row: (row["owner"], row["team"] or "(none)", row["since"]), Output(as_json, as_csv, None, bom))


def _run(command: Any, actor: str, done: str) -> None:
    from domain.base import Meta

    with crm_application() as crm:
        version = crm.handle(command, Meta.now(actor))
    console.print(f"{done} (version {version}).")


def _listing(as_of: str, name: str, query: Any, headers: tuple[str, ...], cells: Any, output: Output) -> None:
    from rich.table import Table

    from gateways.report_tables import single

    instant = parse_instant(as_of)
    with crm_application() as crm, read_store(crm) as store:
        note_freshness(crm, store, ["forecast"])
        rows = query(store, instant)

    def render() -> None:
        table = Table(*headers, title=f"{name.capitalize()} as of {instant.isoformat()}", title_justify="left")
        for row in rows:
            table.add_row(*cells(row))
        console.print(table)
    output.show({"as_of": instant.isoformat(), name: rows}, lambda: single(name, rows), render)
