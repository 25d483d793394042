"""`crm lead set-property`."""

from __future__ import annotations

import typer

from gateways.cli.property_commands import set_property_command
from services.commands import ChangeLeadProperties

lead_app = typer.Typer(help="Leads.", no_args_is_help=True)
lead_app.command("set-property")(set_property_command(ChangeLeadProperties, "lead"))
