"""`crm receipts prune`: bound the table of Idempotency-Key answers (one row per keyed command)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from gateways.cli.common import console, crm_application

receipts_app = typer.Typer(help="Answers kept for Idempotency-Key retries.", no_args_is_help=True)


@receipts_app.command("prune")
def prune(
    older_than_days: Annotated[float, typer.Option(min=1, help="Forget answers older than this many days; a "
                                                               "retry with such a key runs its command again.")],
) -> None:
    """Delete the kept answers of commands older than N days (schedule it, e.g. daily with N = 7)."""
    with crm_application() as crm:
        removed = crm.prune_receipts(timedelta(days=older_than_days))
    console.print(f"Removed {removed} answer(s) older than {older_than_days:g} days.")
