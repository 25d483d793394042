"""`crm deal history`."""

from __future__ import annotations

from typing import Annotated
import typer

from gateways.cli.common import RECORD_ID_HELP, console, crm_application, record_id
from gateways.cli.render import audit_table
from services.deal_audit import deal_audit_trail

deal_app = typer.Typer(help="Deals (opportunities).", no_args_is_help=True)


@deal_app.command("history")
def history(deal_id: Annotated[str, typer.Argument(help=f"The deal: {RECORD_ID_HELP}.")]) -> None:
    """One deal's full audit trail: when, who, from which stage to which, and why."""
    with crm_application() as crm:
        deal, entries = deal_audit_trail(crm, record_id(crm, "deal", deal_id))
        console.print(audit_table(deal, crm.pipeline(deal.pipeline), entries))
