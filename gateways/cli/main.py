"""`crm`: the command line of the event-sourced CRM. Errors exit non-zero with a message.

Each command's module is imported only when that command runs or shows its help (`LazyCommands`): a query
such as `crm funnel --json` loads neither the HTTP server nor the Kafka client nor the import machinery,
which took a start from ≈ 1.5 s to ≈ 0.4 s (issue 12; tests/benchmarks/cli_start.py measures it,
tests/unit/gateways/cli/test_main.py keeps the heavy modules out). `crm --help` imports them all to list them.
"""

from __future__ import annotations

from importlib import import_module

import click
import typer
from typer.core import TyperGroup

# name → "module:attribute", in the order `crm --help` lists them: a command function or a typer.Typer group.
COMMANDS = {
    "demo": "gateways.cli.demo_commands:demo",
    "funnel": "gateways.cli.funnel_commands:funnel",
    "serve": "gateways.cli.serve_commands:serve",
    "relay": "gateways.cli.kafka_commands:relay",
    "inbound": "gateways.cli.kafka_commands:inbound",
    "tickets": "gateways.cli.tickets_commands:tickets",
    "reminders": "gateways.cli.reminders_commands:reminders_app",
    "campaigns": "gateways.cli.campaigns_commands:campaigns",
    "campaign": "gateways.cli.variants_commands:campaign_app",
    "forecast": "gateways.cli.forecast_commands:forecast_app",
    "inspect": "gateways.cli.inspect_commands:inspect_app",
    "winloss": "gateways.cli.inspect_commands:winloss",
    "attribution": "gateways.cli.attribution_commands:attribution",
    "cohorts": "gateways.cli.attribution_commands:cohorts",
    "team": "gateways.cli.target_commands:team_app",
    "target": "gateways.cli.target_commands:target_app",
    "import": "gateways.cli.import_commands:import_history",
    "export": "gateways.cli.import_commands:export_history",
    "segments": "gateways.cli.segments_commands:segments_app",
    "customer": "gateways.cli.customer_commands:customer_app",
    "deal": "gateways.cli.deal_commands:deal_app",
    "lead": "gateways.cli.lead_commands:lead_app",
    "pipeline": "gateways.cli.pipeline_commands:pipeline_app",
    "projections": "gateways.cli.projection_commands:projections_app",
    "receipts": "gateways.cli.receipt_commands:receipts_app",
    "db": "gateways.cli.db_commands:db_app",
    "shards": "gateways.cli.shards_commands:shards_app",
    "vocabulary": "gateways.cli.vocabulary_commands:vocabulary_app",
    "rates": "gateways.cli.rates_commands:rates_app",
}


def load_command(name: str) -> click.Command:
    """The click command of `crm NAME`, its module imported now."""
    module, attribute = COMMANDS[name].split(":")
    found = getattr(import_module(module), attribute)
    if isinstance(found, typer.Typer):
        command: click.Command = typer.main.get_group(found)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(found)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyCommands(TyperGroup):
    """typer's group whose subcommands are named in COMMANDS and built on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(name for name in super().list_commands(ctx) if name not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.add_command(load_command(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(cls=LazyCommands, no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def crm() -> None:
    """Event-sourced CRM."""


if __name__ == "__main__":
    app()
