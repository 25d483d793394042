"""`crm`: the command line of the event-sourced CRM. Errors exit non-zero with a message."""

from __future__ import annotations

import typer

from gateways.cli.campaigns_commands import campaigns
from gateways.cli.customer_commands import customer_app
from gateways.cli.db_commands import db_app
from gateways.cli.deal_commands import deal_app
from gateways.cli.demo_commands import demo
from gateways.cli.funnel_commands import funnel
from gateways.cli.import_commands import export_history, import_history
from gateways.cli.kafka_commands import inbound, relay
from gateways.cli.projection_commands import projections_app
from gateways.cli.rates_commands import rates_app
from gateways.cli.receipt_commands import receipts_app
from gateways.cli.segments_commands import segments_app
from gateways.cli.serve_commands import serve
from gateways.cli.tickets_commands import tickets
from gateways.cli.vocabulary_commands import vocabulary_app

app = typer.Typer(help="Event-sourced CRM.", no_args_is_help=True, pretty_exceptions_enable=False)
app.command()(demo)
app.command()(funnel)
app.command()(serve)
app.command()(relay)
app.command()(inbound)
app.command()(tickets)
app.command()(campaigns)
app.command("import")(import_history)
app.command("export")(export_history)
app.add_typer(segments_app, name="segments")
app.add_typer(customer_app, name="customer")
app.add_typer(deal_app, name="deal")
app.add_typer(projections_app, name="projections")
app.add_typer(receipts_app, name="receipts")
app.add_typer(db_app, name="db")
app.add_typer(vocabulary_app, name="vocabulary")
app.add_typer(rates_app, name="rates")

if __name__ == "__main__":
    app()
