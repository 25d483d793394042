"""`crm export FILE` and `crm import FILE`: the event log's history as JSON Lines, out and back in."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from gateways.cli.common import console, crm_application, fail, start_logging
from services.history import exporter, importer


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeElapsedColumn(), console=console)


def export_history(
    file: Annotated[Path, typer.Argument(help="JSON Lines file to write (overwritten).", dir_okay=False)],
) -> None:
    """Write the whole event log, in log order, to FILE as JSON Lines (one event per line)."""
    with crm_application() as crm, _progress() as progress:
        task = progress.add_task("Exporting", total=crm.event_count() or 1)
        started = time.perf_counter()
        with file.open("wb") as out:
            count = exporter.export_history(crm, out, lambda done, total: progress.update(task, completed=done))
        progress.update(task, completed=count or 1)
    console.print(f"Exported {count:,} events to {file} in {time.perf_counter() - started:.1f} s.")


def import_history(
    file: Annotated[Path, typer.Argument(help="JSON Lines file written by `crm export`.", exists=True,
                                         dir_okay=False, readable=True)],
    batch: Annotated[int, typer.Option(min=1, help="Events per transaction.")] = importer.DEFAULT_BATCH,
    jobs: Annotated[int | None, typer.Option(min=1, help="Processes that check and encode the lines on PostgreSQL "
                                                         "(default: one per core for files of 20 MiB or more, "
                                                         "else 1).")] = None,
) -> None:
    """Append the history in FILE to the event log; one bad line and nothing is written. Logs each batch
    written, a refusal and the end on stderr (CRM_LOG_FORMAT: text or json)."""
    start_logging()
    with crm_application() as crm, _progress() as progress:
        tasks: dict[str, TaskID] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase.capitalize(), total=total or 1)
            progress.update(tasks[phase], completed=done)

        started = time.perf_counter()
        try:
            count = importer.import_history(crm, file, batch, update, jobs)
        except importer.ImportRefused as refused:
            raise fail(f"{file}, {refused}; nothing was imported") from None
    console.print(f"Imported {count:,} events from {file} in {time.perf_counter() - started:.1f} s.")
