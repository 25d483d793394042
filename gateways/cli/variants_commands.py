"""`crm campaign variants define | expose | stop | winner | report`: a campaign's A/B test (issue 16). Each
change is an event on the campaign (`domain.campaign_variants`); the report reads the variants read model as
of an instant: each variant's funnel and each comparison's significance and verdict. The services are imported
when a command runs (see gateways/cli/main.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from gateways.cli.common import RECORD_ID_HELP, console, crm_application, fail, note_freshness, parse_instant, read_store
from gateways.cli.output import AsCsv, AsJson, AsOf, Bom, Output, TableName

campaign_app = typer.Typer(help="A campaign's A/B test (`crm campaigns` is the campaigns report).", no_args_is_help=True)
variants_app = typer.Typer(help="Variants of a campaign: define, expose, stop, declare a winner, report.",
                           no_args_is_help=True)
campaign_app.add_typer(variants_app, name="variants")

CampaignArg = Annotated[str, typer.Argument(metavar="CAMPAIGN", help=f"The campaign: {RECORD_ID_HELP}.")]
VariantArg = Annotated[str, typer.Argument(help='The variant\'s key, e.g. "A".')]
Reason = Annotated[str, typer.Option(help="Why (kept with the event).")]
Actor = Annotated[str, typer.Option(help="Who did it (recorded as the event's actor).")]
ExpectedVersion = Annotated[int | None, typer.Option(min=1, help="Refused unless the campaign is at this version.")]


@variants_app.command("define")
def define(
    campaign: CampaignArg,
    variants: Annotated[str, typer.Argument(help='The variants as JSON, control first: [{"key": "A", "name": "原文案", '
                                                 '"copy": "…", "channel": "…", "landing_page": "…", "offer": "…", '
                                                 '"weight": 1}, …] (key and weight required), or @FILE holding it.')],
    reason: Reason = "", expected_version: ExpectedVersion = None, actor: Actor = "cli",
) -> None:
    """Define (or redefine, keeping every key) the campaign's variants and their split."""
    from services.commands.ab_tests import DefineVariants

    parsed = _json(variants)
    if not isinstance(parsed, list):
        raise fail("the variants are a JSON list of objects, each with a key and a weight")
    _run(campaign, lambda uuid: DefineVariants(uuid, parsed, reason, expected_version=expected_version), actor,
         f"{len(parsed)} variants defined")


@variants_app.command("expose")
def expose(campaign: CampaignArg, variant: VariantArg,
           count: Annotated[int, typer.Argument(help="How many more were sent or shown (> 0).")],
           note: Annotated[str, typer.Option(help="Where the count comes from.")] = "",
           expected_version: ExpectedVersion = None, actor: Actor = "cli") -> None:
    """Record how many more of a variant were sent or shown: the first step of its funnel."""
    from services.commands.ab_tests import RecordExposures

    _run(campaign, lambda uuid: RecordExposures(uuid, variant, count, note, expected_version=expected_version), actor,
         f"{count:,} exposures of {variant} recorded")


@variants_app.command("stop")
def stop(campaign: CampaignArg, variant: VariantArg, reason: Reason = "", expected_version: ExpectedVersion = None,
         actor: Actor = "cli") -> None:
    """Stop a variant: it takes no more exposures, responses or leads."""
    from services.commands.ab_tests import StopVariant

    _run(campaign, lambda uuid: StopVariant(uuid, variant, reason, expected_version=expected_version), actor,
         f"Variant {variant} stopped")


@variants_app.command("winner")
def winner(campaign: CampaignArg, variant: VariantArg, reason: Reason = "", expected_version: ExpectedVersion = None,
           actor: Actor = "cli") -> None:
    """Declare a variant the winner of the campaign's test."""
    from services.commands.ab_tests import DeclareWinner

    _run(campaign, lambda uuid: DeclareWinner(uuid, variant, reason, expected_version=expected_version), actor,
         f"Variant {variant} declared the winner")


@variants_app.command("report")
def report(
    campaign: CampaignArg, as_of: AsOf = "now",
    step: Annotated[str, typer.Option(help="The step whose rate over exposures is compared: responses, leads, "
                                           "qualified, customers or won.")] = "responses",
    baseline: Annotated[str | None, typer.Option(help="The variant the others are compared with (default the first "
                                                      "defined, the control).")] = None,
    as_json: AsJson = False, as_csv: AsCsv = False, table: TableName = None, bom: Bom = False,
) -> None:
    """Each variant's funnel as of an instant (default now) and each comparison's significance and verdict.
    CSV tables: variants (default), comparisons, unconverted."""
    from domain.campaign import Campaign
    from gateways.cli.common import record_id
    from gateways.report_tables import variants_tables
    from projections.rates import RateQueries
    from projections.variants import VariantQueries

    output = Output(as_json, as_csv, table, bom)
    instant = parse_instant(as_of)
    with crm_application() as crm, read_store(crm) as store:
        uuid = record_id(crm, "campaign", campaign)
        crm.get(Campaign, uuid)  # no such campaign: exit 1 saying so
        note_freshness(crm, store, ["variants", "rates"])
        money = RateQueries(store).conversion(crm.reporting_currency, instant)
        try:
            data = VariantQueries(store).report(str(uuid), instant, step, baseline, money).to_dict()
        except ValueError as error:
            raise fail(str(error)) from None
    output.show(data, lambda: variants_tables(data), lambda: _print(data))


def _json(text: str) -> Any:
    try:
        return orjson.loads(Path(text[1:]).read_bytes() if text.startswith("@") else text)
    except OSError as error:
        raise fail(f"cannot read {text[1:]}: {error.strerror}") from None
    except orjson.JSONDecodeError as error:
        raise fail(f"the variants are not valid JSON ({error})") from None


def _run(campaign: str, command: Any, actor: str, done: str) -> None:
    from domain.base import Meta
    from gateways.cli.common import record_id

    with crm_application() as crm:
        uuid = record_id(crm, "campaign", campaign)
        version = crm.handle(command(uuid), Meta.now(actor))
    console.print(f"{done} (campaign {uuid}, version {version}).")


def _print(data: dict[str, Any]) -> None:
    from rich.table import Table

    from gateways.cli.render import money_note

    step = data["step"]
    table = Table("Variant", "Name", "Split", "Exposures", "Responses", "Leads", "Qualified", "Customers", "Won",
                  "Revenue", f"{step} rate", "Stopped",
                  title=f"Variants of campaign {data['campaign_id']} as of {data['as_of']}", title_justify="left")
    for row in data["variants"]:
        stopped = row["stopped"]
        table.add_row(row["key"], row["name"], f"{row['share']:.0%}",
                      *(f"{row[name]:,}" for name in ("exposures", "responses", "leads", "qualified", "customers", "won")),
                      f"{row['revenue_cents'] / 100:,.2f}", "–" if row["rate"] is None else f"{row['rate']:.2%}",
                      f"{stopped['reason']} ({stopped['actor']})" if stopped else "")
    console.print(table)
    comparisons = Table("Variant", "vs", "Difference", "95 % interval", "p", "P(beats)", "Needed per arm", "Verdict",
                        title=f"Comparisons at {step} ÷ exposures (chi-square p over all: "
                              f"{_number(data['chi_square_p'])})", title_justify="left")
    for row in data["comparisons"]:
        interval = row["interval"]
        comparisons.add_row(str(row["variant"]), str(row["control"]), _points(row["difference"]),
                            "–" if interval is None else f"{_points(interval[0])} … {_points(interval[1])}",
                            _number(row["p_value"]), _number(row["probability_to_beat"]),
                            "–" if row["needed_per_arm"] is None else f"{row['needed_per_arm']:,}",
                            f"{row['verdict']}: {row['reason']}")
    console.print(comparisons)
    if data["winner"]:
        won = data["winner"]
        console.print(f"Winner declared: {won['variant']} by {won['actor']} at {won['at']} — {won['reason']}")
    console.print(money_note(data["currency"], _unconverted(data)))


def _unconverted(data: dict[str, Any]) -> dict[str, int]:
    total: dict[str, int] = {}
    for row in data["variants"]:
        for currency, cents in row["unconverted"].items():
            total[currency] = total.get(currency, 0) + cents
    return total


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def _points(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.2f} pt"
