"""`crm projections verify`'s running and printing: the verification is services.bulk.verify_rebuild's."""

from __future__ import annotations

from typing import Any

import orjson
import typer
from rich.table import Table

from gateways.cli.common import console, crm_application, fail, read_store


def run_verify(names: list[str], as_json: bool) -> None:
    """Verify, print the result (a table per read model, or JSON), exit 1 on a difference or a refusal."""
    from services.bulk.log_reader import UnsupportedLog
    from services.bulk.verify_rebuild import VerifyRefused, verify
    from services.projection_runtime.online_rebuild import OnlineRebuildRefused
    from services.projection_runtime.registry import UnknownReadModel

    with crm_application() as crm, read_store(crm) as store:
        try:
            result = verify(crm, store, names)
        except (UnknownReadModel, UnsupportedLog, VerifyRefused, OnlineRebuildRefused) as refused:
            raise fail(str(refused)) from None
    if as_json:
        typer.echo(orjson.dumps(result.as_json(), option=orjson.OPT_INDENT_2, default=str).decode())
    else:
        _print(result.as_json())
    if not result.equal:
        raise typer.Exit(1)


def _print(result: dict[str, Any]) -> None:
    for model in result["read_models"]:
        at = f"log position {model['position']:,}"
        if model["rebuilt_position"] != model["position"]:
            at += f" (the rebuilt copy stopped at {model['rebuilt_position']:,})"
        table = Table(title=f"{model['name']} at {at}: {'equal' if model['equal'] else 'DIFFERENT'}")
        for column in ("table", "live rows", "rebuilt rows", "only live", "only rebuilt", "differing"):
            table.add_column(column, justify="left" if column == "table" else "right", no_wrap=column == "table")
        for diff in model["tables"]:
            table.add_row(diff["table"], *(f"{diff[k]:,}" for k in ("live_rows", "rebuilt_rows", "only_live",
                                                                    "only_rebuilt", "differing")))
        console.print(table)
        for diff in model["tables"]:
            for example in diff["examples"]:
                console.print(f"  {diff['table']} {example['kind']} {_json(example['key'])}: "
                              f"live {_json(example['live'])}, rebuilt {_json(example['rebuilt'])}")
    console.print("Equal." if result["equal"] else "The rebuilt read models differ from the live ones.")


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()
