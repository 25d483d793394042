"""`crm`: run the demo, inspect deals. Errors exit non-zero with a message and write nothing."""

from __future__ import annotations

import calendar
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Annotated, TypeVar
from uuid import UUID

import typer
from eventsourcing.utils import get_topic
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from domain.deal import Deal
from domain.errors import DomainError
from gateways.cli.render import audit_table, funnel_table
from services.application import ConcurrencyConflict, CrmApplication, NotFound
from services.audit import deal_audit_trail
from services.demo import DemoHistory, DemoSettings
from services.funnel_replay import replay_funnels
from services.settings import Database, SettingsError, database_from_environment

app = typer.Typer(help="Event-sourced CRM.", no_args_is_help=True, pretty_exceptions_enable=False)
deal_app = typer.Typer(help="Deals (opportunities).", no_args_is_help=True)
app.add_typer(deal_app, name="deal")
console = Console()
errors = Console(stderr=True)
T = TypeVar("T")


@contextmanager
def crm_application() -> Iterator[CrmApplication]:
    """Open the configured event log; turn every refusal into a message and exit code 1."""
    try:
        application = CrmApplication(database_from_environment())
        try:
            yield application
        finally:
            application.close()
    except (DomainError, NotFound, ConcurrencyConflict, SettingsError) as error:
        errors.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None


def months_before(instant: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (clamped to the month's last day)."""
    year, month_index = divmod(instant.year * 12 + instant.month - 1 - months, 12)
    last_day = calendar.monthrange(year, month_index + 1)[1]
    return instant.replace(year=year, month=month_index + 1, day=min(instant.day, last_day))


def _reset(database: Database) -> None:
    if database.sqlite_path is None:
        errors.print(f"[red]error:[/red] --reset only deletes an SQLite file; {database.kind} data is left alone")
        raise typer.Exit(1)
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(database.sqlite_path + suffix):
            os.remove(database.sqlite_path + suffix)


def _timed(label: str, action: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = action()
    console.print(f"[dim]{label} in {time.perf_counter() - started:.1f} s[/dim]")
    return result


@app.command()
def demo(
    leads: Annotated[int, typer.Option(min=10, help="How many leads the campaigns bring in.")] = 10000,
    days: Annotated[int, typer.Option(min=30, help="How many days of history, ending today.")] = 730,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same history.")] = 7,
    reset: Annotated[bool, typer.Option("--reset", help="Delete the SQLite log first and regenerate.")] = False,
) -> None:
    """Generate a realistic two-year CRM history, then print the sales funnel now and 6 months ago."""
    if reset:
        _reset(database_from_environment())
    with crm_application() as crm:
        console.print(f"Event log: [bold]{crm.database.url}[/bold]")
        if crm.event_count():
            console.print(f"The log already holds {crm.event_count():,} events; showing its funnels "
                          "(use --reset to regenerate).")
        else:
            crm.ensure_default_pipelines()
            history = DemoHistory(crm, DemoSettings(seed=seed, leads=leads, days=days))
            with Progress(TextColumn("[bold]Generating history"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                          TimeElapsedColumn(), console=console) as progress:
                task = progress.add_task("history", total=1.0)
                history.on_progress = lambda fraction: progress.update(task, completed=fraction)
                started = time.perf_counter()
                history.run()
            console.print(f"Recorded {crm.event_count():,} events in {time.perf_counter() - started:.1f} s.")
        now = datetime.now(timezone.utc)
        current, past = _timed("funnels replayed from the log",
                               lambda: replay_funnels(crm, "sales", [now, months_before(now, 6)]))
        console.print(funnel_table(current, "Sales funnel now"))
        console.print(funnel_table(past, "Sales funnel 6 months earlier"))
        won = next(crm.read_log(topics=[get_topic(Deal.Won)]), None)
        if won:
            console.print(f"Audit trail of a won deal: [bold]crm deal history {won[1].originator_id}[/bold]")


@deal_app.command("history")
def deal_history(deal_id: Annotated[UUID, typer.Argument(help="The deal's id.")]) -> None:
    """One deal's full audit trail: when, who, from which stage to which, and why."""
    with crm_application() as crm:
        deal, entries = deal_audit_trail(crm, deal_id)
        console.print(audit_table(deal, crm.pipeline(deal.pipeline), entries))


if __name__ == "__main__":
    app()
