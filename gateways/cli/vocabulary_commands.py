"""`crm vocabulary list/show/set/add/retire`: the values an installation accepts for its channels, regions,
industries and loss reasons (recorded as events: every copy of the log and every import knows them)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.table import Table
from rich.text import Text

from domain.base import Meta
from domain.vocabulary import KINDS, UNKNOWN, check_kind, describe
from gateways.cli.common import console, crm_application
from services.commands import AddVocabularyValue, RetireVocabularyValue, SetVocabulary

vocabulary_app = typer.Typer(help="Vocabularies: channels, regions, industries, loss reasons.", no_args_is_help=True)
Kind = Annotated[str, typer.Argument(help=f"One of: {', '.join(KINDS)}.")]
Actor = Annotated[str, typer.Option(help="Who changed it (recorded as the event's actor).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _print_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


@vocabulary_app.command("list")
def list_vocabularies(as_json: AsJson = False) -> None:
    """Every kind: how many values it has, whether it is open, and whether this installation defined it."""
    with crm_application() as crm:
        views = [describe(kind, crm.vocabulary(kind)) for kind in KINDS]
    if as_json:
        _print_json(views)
        return
    table = Table("Kind", "Values", "Open", "Retired", "Defined", title="Vocabularies", title_justify="left")
    for view in views:
        table.add_row(view["kind"], str(len(view["values"])), "yes" if view["open"] else "no",
                      str(len(view["retired"])), "yes" if view["defined"] else "default")
    console.print(table)


@vocabulary_app.command("show")
def show(kind: Kind, as_json: AsJson = False) -> None:
    """A kind's values in force, and those retired (records keep them; new ones may not use them)."""
    with crm_application() as crm:
        view = describe(check_kind(kind), crm.vocabulary(kind))
    if as_json:
        _print_json(view)
        return
    state = ("open: any text is accepted too" if view["open"] else "closed: only these values") + \
        f"; {UNKNOWN!r} is always accepted" + ("" if view["defined"] else " (defaults: not defined here)")
    console.print(Text.assemble((kind, "bold"), f" — {state}"))
    for value in view["values"]:
        console.print(f"  {value}")
    if view["retired"]:
        console.print(f"retired: {', '.join(view['retired'])}")


@vocabulary_app.command("set")
def set_values(
    kind: Kind,
    values: Annotated[list[str] | None, typer.Argument(help="The values, in the order to show them.")] = None,
    open_: Annotated[bool, typer.Option("--open/--closed", help="Accept any text too (as a dimension).")] = False,
    actor: Actor = "admin",
) -> None:
    """Replace a kind's values (values left out are retired)."""
    with crm_application() as crm:
        version = crm.handle(SetVocabulary(check_kind(kind), values or [], open_), Meta.now(actor))
    console.print(f"Vocabulary {kind} set: {len(values or [])} values, {'open' if open_ else 'closed'} "
                  f"(version {version}).")


@vocabulary_app.command("add")
def add(kind: Kind, value: Annotated[str, typer.Argument(help="The value to accept from now on.")],
        actor: Actor = "admin") -> None:
    """Accept one more value (a kind never defined keeps its defaults and gains this one)."""
    _change_value(AddVocabularyValue, kind, value, actor, "added")


@vocabulary_app.command("retire")
def retire(kind: Kind, value: Annotated[str, typer.Argument(help="The value new records may no longer use.")],
           actor: Actor = "admin") -> None:
    """Stop accepting a value for new records; records that have it keep it."""
    _change_value(RetireVocabularyValue, kind, value, actor, "retired")


def _change_value(command: type[AddVocabularyValue | RetireVocabularyValue], kind: str, value: str, actor: str,
                  done: str) -> None:
    with crm_application() as crm:
        version = crm.handle(command(check_kind(kind), value), Meta.now(actor))
    console.print(f"Vocabulary {kind}: {value!r} {done} (version {version}).")
