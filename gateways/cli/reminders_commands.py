"""`crm reminders` (the reminders open as of an instant, by owner) and `crm reminders run` (the unattended
process that emits them: services/reminder_process.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from gateways.cli.common import console, crm_application, note_freshness, parse_instant, read_store, run_unattended
from gateways.cli.output import AsCsv, AsJson, AsOf, Bom, Output, TableName

reminders_app = typer.Typer(help="Automatic reminders: items that stayed too long in a stage (or near a ticket's "
                                 "service-level breach), open as of an instant; `run` emits them.",
                            invoke_without_command=True)
CSV_COLUMNS = ("item", "customer", "kind", "pipeline", "stage", "threshold", "owner", "entered_at", "due_at",
               "emitted_at", "item_id", "reminder_id")


@reminders_app.callback()
def reminders(
    ctx: typer.Context,
    as_of: AsOf = "now",
    owner: Annotated[str | None, typer.Option(help="Only the reminders of this owner (as named when reminded).")]
    = None,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
    table: TableName = None,
    bom: Bom = False,
) -> None:
    """Reminders open as of an instant (default now): emitted by then, and the item still in that stage entry
    then; items by name and customer. CSV table: reminders."""
    if ctx.invoked_subcommand is not None:
        return
    from projections.reminders import ReminderQueries

    output = Output(as_json, as_csv, table, bom)
    instant = parse_instant(as_of)
    with crm_application() as crm, read_store(crm) as store:
        note_freshness(crm, store, ["reminders"])
        found = [r.to_dict() for r in ReminderQueries(store, crm.keys.unseal_all_marks).open_at(instant, owner)]
    data = {"as_of": instant.isoformat(), "owner": owner, "reminders": found}
    output.show(data, lambda: {"reminders": [{c: r[c] for c in CSV_COLUMNS} for r in found]},
                lambda: _print(data))


def _print(data: dict) -> None:
    from rich.table import Table

    table = Table("Item", "Customer", "Stage", "Threshold", "Owner", "Due", "Reminded",
                  title=f"Open reminders as of {data['as_of']}" + (f" ({data['owner']})" if data["owner"] else ""),
                  title_justify="left")
    for r in data["reminders"]:
        table.add_row(r["item"], r["customer"], f"{r['pipeline']}/{r['stage']}", r["threshold"], r["owner"] or "–",
                      r["due_at"], r["emitted_at"])
    console.print(table)


@reminders_app.command()
def run(poll: Annotated[float, typer.Option(min=0.01, help="Seconds between looks when nothing was due.")] = 0.25
        ) -> None:
    """Emit each reminder once, as its threshold passes (Ctrl-C stops): one process per database reminds,
    another started beside it stands by; database outages are waited out (logged on stderr). `crm relay`
    publishes them on crm.events and crm.reminders."""
    from services.reminder_process import run_until_stopped

    run_unattended("crm reminders run", "Reminding as thresholds pass; Ctrl-C to stop.", run_until_stopped, poll)
