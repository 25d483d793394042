"""`crm deal history`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated
import typer

from gateways.cli.common import RECORD_ID_HELP, console, crm_application, record_id
from gateways.cli.output import AsCsv, AsJson, Bom, Output
from gateways.report_tables import single
from gateways.cli.render import audit_table
from services.deal_audit import deal_audit_trail

deal_app = typer.Typer(help="Deals (opportunities).", no_args_is_help=True)


@deal_app.command("history")
def history(deal_id: Annotated[str, typer.Argument(help=f"The deal: {RECORD_ID_HELP}.")], as_json: AsJson = False,
            as_csv: AsCsv = False, bom: Bom = False) -> None:
    """One deal's full audit trail: when, who, from which stage to which, and why (CSV: one row an event)."""
    output = Output(as_json, as_csv, None, bom)
    with crm_application() as crm:
        deal, entries = deal_audit_trail(crm, record_id(crm, "deal", deal_id))
        pipeline = crm.pipeline(deal.pipeline)
    rows = [{**asdict(e), "occurred_at": e.occurred_at.isoformat(), "recorded_at": e.recorded_at.isoformat()}
            for e in entries]
    output.show({"deal_id": str(deal.id), "external_id": deal.external_id, "title": deal.title,
                 "status": deal.status, "stage": deal.stage, "amount": str(deal.amount), "currency": deal.currency,
                 "owner": deal.owner, "entries": rows},
                lambda: single("entries", rows), lambda: console.print(audit_table(deal, pipeline, entries)))
