"""`crm deal history`, `set-property`, and the forecast's `set-close`, `set-probability`, `set-category`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from gateways.cli.common import RECORD_ID_HELP, console, crm_application, record_id
from gateways.cli.output import AsCsv, AsJson, Bom, Output
from gateways.cli.property_commands import set_property_command
from gateways.report_tables import single
from gateways.cli.render import audit_table
from services.commands import ChangeDealProperties
from services.deal_audit import deal_audit_trail

deal_app = typer.Typer(help="Deals (opportunities).", no_args_is_help=True)
deal_app.command("set-property")(set_property_command(ChangeDealProperties, "deal"))


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


Reason = Annotated[str, typer.Option(help="Why (kept in the deal's audit trail).")]
Actor = Annotated[str, typer.Option(help="Who did it (recorded as the event's actor).")]
DealArgument = Annotated[str, typer.Argument(help=f"The deal: {RECORD_ID_HELP}.")]
DEFAULT = "default"  # the word that clears a deal's own probability or category


@deal_app.command("set-close")
def set_close(deal_id: DealArgument, expected_close: Annotated[str, typer.Argument(help="The new expected close "
                                                                                         "date, e.g. 2026-06-30.")],
              reason: Reason = "", actor: Actor = "admin") -> None:
    """Move a deal's expected close date (the forecast places an open deal in that date's period)."""
    from datetime import date

    from services.commands.forecasts import ChangeExpectedClose

    try:
        day = date.fromisoformat(expected_close)
    except ValueError:
        raise typer.BadParameter(f"{expected_close!r} is not a date like 2026-06-30", param_hint="EXPECTED_CLOSE") from None
    _deal_change(deal_id, lambda deal: ChangeExpectedClose(deal, day, reason), actor,
                 f"expected to close on {day.isoformat()}")


@deal_app.command("set-probability")
def set_probability(deal_id: DealArgument, probability: Annotated[str, typer.Argument(
        help=f"Whole percent 0–100, or {DEFAULT!r}: its stage's default again.")], reason: Reason = "",
                    actor: Actor = "admin") -> None:
    """Set a deal's own probability (a stage change goes back to the new stage's default)."""
    from services.commands.forecasts import ChangeProbability

    value = None if probability == DEFAULT else _percent(probability)
    _deal_change(deal_id, lambda deal: ChangeProbability(deal, value, reason), actor,
                 f"at probability {probability}" + ("" if value is None else " %"))


@deal_app.command("set-category")
def set_category(deal_id: DealArgument, category: Annotated[str, typer.Argument(
        help=f"pipeline, best_case, commit or omitted, or {DEFAULT!r}: its stage's default again.")],
                 reason: Reason = "", actor: Actor = "admin") -> None:
    """Set a deal's own forecast category (a stage change goes back to the new stage's default)."""
    from services.commands.forecasts import ChangeForecastCategory

    value = None if category == DEFAULT else category
    _deal_change(deal_id, lambda deal: ChangeForecastCategory(deal, value, reason), actor, f"in category {category}")


def _percent(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 100:
        raise typer.BadParameter(f"{text!r} is not a whole percent from 0 to 100 nor {DEFAULT!r}",
                                 param_hint="PROBABILITY")
    return int(text)


def _deal_change(deal_text: str, command_of: Any, actor: str, done: str) -> None:
    from domain.base import Meta

    with crm_application() as crm:
        deal = record_id(crm, "deal", deal_text)
        version = crm.handle(command_of(deal), Meta.now(actor))
    console.print(f"Deal {deal} is now {done} (version {version}).")
