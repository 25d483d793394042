"""`crm demo`: a seeded two-year history, then the sales funnel now and six months earlier."""

from __future__ import annotations

import calendar
import os
import time
from datetime import datetime, timezone
from typing import Annotated

import typer
from eventsourcing.utils import get_topic
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from domain.deal import Deal
from domain.periods import period_of
from gateways.cli.common import console, crm_application, fail, read_store
from gateways.cli.forecast_outlook_commands import print_backtest
from gateways.cli.projection_commands import run_with_progress
from gateways.cli.render import funnel_table
from services.demo.sample_data import DemoHistory, DemoSettings
from services.projection_runtime.funnel_as_of import funnel_queries, stages_of
from services.projection_runtime.registry import projector_for
from services.settings import Database, database_from_environment, time_zone_from_environment


def months_before(instant: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (clamped to the month's last day)."""
    year, month_index = divmod(instant.year * 12 + instant.month - 1 - months, 12)
    last_day = calendar.monthrange(year, month_index + 1)[1]
    return instant.replace(year=year, month=month_index + 1, day=min(instant.day, last_day))


def _reset(database: Database) -> None:
    if database.sqlite_path is None:
        raise fail(f"--reset only deletes an SQLite file; {database.kind} data is left alone")
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(database.sqlite_path + suffix):
            os.remove(database.sqlite_path + suffix)


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
        console.print(Text.assemble("Event log: ", (str(crm.database.url), "bold")))
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
        with read_store(crm) as store:
            started = time.perf_counter()
            run_with_progress("Projecting", projector_for(crm, store), rebuild=False)
            console.print(f"Read models up to date in {time.perf_counter() - started:.1f} s.")
            now = datetime.now(timezone.utc)
            queries, stages = funnel_queries(store), stages_of(crm, "sales")
            console.print(funnel_table(queries.report("sales", stages, now), "Sales funnel now"))
            console.print(funnel_table(queries.report("sales", stages, months_before(now, 6)),
                                       "Sales funnel 6 months earlier"))
            first = period_of(months_before(now, 6), "month", time_zone_from_environment()).start
            print_backtest(crm, store, first, 6)  # what each forecast method said then, against what closed since
        won = next(crm.read_log(topics=[get_topic(Deal.Won)]), None)
        if won:
            console.print(Text.assemble("Audit trail of a won deal: ", (f"crm deal history {won[1].originator_id}", "bold")))
