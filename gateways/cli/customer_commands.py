"""`crm customer timeline`, `crm customer forget` and `crm customer set-property`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table

from domain.base import Meta
from gateways.cli.common import (RECORD_ID_HELP, console, crm_application, fail, note_freshness, parse_instant,
                                 read_store, record_id)
from gateways.cli.output import AsCsv, AsJson, AsOf, Bom, Output
from gateways.cli.property_commands import set_property_command
from gateways.cli.render import shown, when
from gateways.report_tables import single
from projections.external_ids import ExternalIdQueries
from projections.timeline import Timeline, TimelineQueries, UnknownCustomer
from services.commands import ChangeCustomerProperties, ForgetCustomer
from services.settings import time_zone_from_environment

customer_app = typer.Typer(help="Customers.", no_args_is_help=True)
customer_app.command("set-property")(set_property_command(ChangeCustomerProperties, "customer"))


@customer_app.command("forget")
def forget(
    customer: Annotated[str, typer.Argument(help=f"The customer: {RECORD_ID_HELP}.")],
    actor: Annotated[str, typer.Option(help="Who asked for it (recorded as the event's actor).")] = "dpo",
) -> None:
    """Erase a customer's personal data everywhere (destroys their keys; irreversible). Counts stay intact."""
    with crm_application() as crm:
        customer_id = record_id(crm, "customer", customer)
        crm.handle(ForgetCustomer(customer_id), Meta.now(actor))
        console.print(f"Customer {customer_id} forgotten: their personal data now reads \"(forgotten)\" "
                      "in the log, the read models, exports and every copy on Kafka.")


@customer_app.command("timeline")
def timeline(
    customer: Annotated[str, typer.Argument(help=f"The customer: {RECORD_ID_HELP}.")],
    as_of: AsOf = "now",
    limit: Annotated[int, typer.Option(min=1, help="At most this many entries.")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many entries first.")] = 0,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
    bom: Bom = False,
) -> None:
    """Everything that happened with one customer, its leads, deals, tickets and campaign responses."""
    output = Output(as_json, as_csv, None, bom)
    instant = parse_instant(as_of)
    with crm_application() as crm, read_store(crm) as store:
        customer_id = record_id(crm, "customer", customer)
        note_freshness(crm, store, ["timeline"])
        try:
            result = TimelineQueries(store, crm.keys.unseal_marks).timeline(customer_id, instant, limit, offset)
        except UnknownCustomer as error:
            raise fail(str(error)) from None
        known = ExternalIdQueries(store).external_ids([customer_id, *(e.subject_id for e in result.entries)])
    answer = result.to_dict()
    for entry, listed in zip(result.entries, answer["entries"]):
        listed["subject_external_id"] = known.get(entry.subject_id, "")
    output.show({**answer, "external_id": known.get(customer_id, "")}, lambda: single("entries", answer["entries"]),
                lambda: console.print(_timeline_table(result, instant, known)))


def _timeline_table(result: Timeline, as_of: datetime, known: dict[UUID, str]) -> Table:
    """Records with an external id are shown by it too (an auditor compares with the system it came from)."""
    entries = f"{result.offset + 1}–{result.offset + len(result.entries)}" if result.entries else "none"
    table = Table(f"When (business, {time_zone_from_environment()})", "Event", "Who", "What", "Subject",
                  title=f"Customer {_named(result.customer_id, known)} as of {shown(as_of)} "
                        f"— entries {entries} of {result.total}", title_justify="left")
    for entry in result.entries:
        table.add_row(when(entry.occurred_at), entry.kind, entry.actor, entry.summary,
                      _named(entry.subject_id, known))
    return table


def _named(record: UUID, known: dict[UUID, str]) -> str:
    return f"{record} ({known[record]})" if record in known else str(record)
