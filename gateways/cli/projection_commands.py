"""`crm projections rebuild | follow | status`."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateways.cli.common import console, crm_application, read_store
from services.projector import DEFAULT_BATCH, Projector
from services.read_models import READ_MODELS, projector_for

projections_app = typer.Typer(help="Read models built from the event log.", no_args_is_help=True)
Names = Annotated[list[str] | None, typer.Argument(help=f"Read models (default: all): {', '.join(READ_MODELS)}")]


def run_with_progress(label: str, projector: Projector, rebuild: bool, limit: int = DEFAULT_BATCH) -> int:
    with Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        positions = projector.positions().values()
        task = progress.add_task(label, total=projector.app.event_count(), completed=0 if rebuild else min(positions))
        update = lambda done, head: progress.update(task, completed=done, total=head)  # noqa: E731
        return projector.rebuild(update, limit) if rebuild else projector.catch_up(update, limit)


@projections_app.command()
def rebuild(names: Names = None) -> None:
    """Empty the read models and build them again from the whole log."""
    with crm_application() as crm, read_store(crm) as store:
        projector = projector_for(crm, store, names or [])
        run_with_progress("Rebuilding", projector, rebuild=True)
        console.print(f"Rebuilt {', '.join(m.name for m in projector.models)} "
                      f"over {crm.event_count():,} events.")


@projections_app.command()
def follow(
    poll: Annotated[float, typer.Option(help="Seconds between polls once caught up.")] = 0.2,
    batch: Annotated[int, typer.Option(min=1, help="Events per transaction.")] = DEFAULT_BATCH,
) -> None:
    """Catch up, then keep the read models current as events are recorded (Ctrl-C stops)."""
    with crm_application() as crm, read_store(crm) as store:
        projector = projector_for(crm, store)
        run_with_progress("Catching up", projector, rebuild=False, limit=batch)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        console.print("Following the log; Ctrl-C to stop.")
        try:
            projector.follow(stop, poll, batch)
        except KeyboardInterrupt:
            stop.set()


@projections_app.command()
def status() -> None:
    """Position and lag of each read model."""
    with crm_application() as crm, read_store(crm) as store:
        table = Table("Read model", "Position", "Log head", "Lag")
        for state in projector_for(crm, store).status():
            table.add_row(state.name, f"{state.position:,}", f"{state.head:,}", f"{state.lag:,}")
        console.print(table)
