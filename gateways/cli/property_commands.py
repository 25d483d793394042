"""`crm deal|lead|customer set-property ID name=value …`: set (or, with `name=`, remove) named properties.

One command builder for the three nouns: each sends its aggregate's properties command
(services/commands), whose rules live in `domain.properties`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from domain.base import Meta
from domain.errors import DomainError
from domain.properties import require_changes
from gateways.cli.common import RECORD_ID_HELP, console, crm_application, fail, record_id

ASSIGNMENT_HELP = "name=value pairs (product=GTX team=华东一组); name= (nothing after =) removes the property."


def parse_assignments(assignments: list[str]) -> dict[str, str]:
    """`["product=GTX", "team="]` → `{"product": "GTX", "team": ""}`; typer.Exit on a pair without "="."""
    changes: dict[str, str] = {}
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        if not equals:
            raise fail(f"{assignment!r} is not name=value (name= removes a property)")
        if name in changes:
            raise fail(f"property {name} is named twice")
        changes[name] = value
    return changes


def property_filters(assignments: list[str]) -> tuple[tuple[str, str], ...]:
    """`--property name=value` filters, checked as a property change would be; a filter needs a value."""
    wanted = parse_assignments(assignments)
    try:
        checked = require_changes(wanted) if wanted else {}
    except DomainError as error:
        raise fail(str(error)) from None
    if "" in checked.values():
        raise fail("a --property filter needs a value: name=value")
    return tuple(checked.items())


def set_property_command(command: type, noun: str) -> Callable[..., None]:
    """The `set-property` command of `noun`, sending `command(id, changes=…)`."""

    def set_property(
        record: Annotated[str, typer.Argument(metavar="ID", help=f"The deal, lead or customer: {RECORD_ID_HELP}.")],
        assignments: Annotated[list[str], typer.Argument(metavar="NAME=VALUE...", help=ASSIGNMENT_HELP)],
        expected_version: Annotated[int | None, typer.Option(min=1, help="Refused if the record moved on.")] = None,
        actor: Annotated[str, typer.Option(help="Who did it (recorded as the event's actor).")] = "cli",
    ) -> None:
        changes = parse_assignments(assignments)
        with crm_application() as crm:
            uuid = record_id(crm, noun, record)
            version: Any = crm.handle(command(uuid, changes=changes, expected_version=expected_version),
                                      Meta.now(actor))
        console.print(f"{noun.capitalize()} {uuid} now at version {version}: "
                      + ", ".join(f"{k}={v}" if v else f"{k} removed" for k, v in changes.items()))

    set_property.__doc__ = f"Set named properties of a {noun} (product, team, office, …); name= removes one."
    return set_property
