"""Named properties of deals, leads and customers (product, team, office, account size, any custom name):
the dimensions analysts slice funnels by.

A property is a dimension, not personal data: it is stored unsealed so that reports can group by it, so a
value may not hold an e-mail address or a phone number (`domain.base.require_dimension`). A change names
the properties it sets; the value "" removes one. Names that the funnel already groups by on its own
(owner, region, industry, channel, campaign) or that name its axes (cohort, stage, …) are reserved, so that
`--by region` means one thing only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from domain.base import Meta, refuse_nul, require_dimension
from domain.errors import DomainError

WELL_KNOWN = ("product", "product_line", "team", "manager", "office", "account_size")
RESERVED = frozenset({"owner", "region", "industry", "channel", "campaign", "campaign_id", "segment", "cohort",
                      "pipeline", "stage", "status", "amount", "currency"})
NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_VALUE_LENGTH = 200  # as a command's Label: a dimension's value is a short name, not a text
MAX_CHANGES = 50  # per event: a row of an export has a few dozen columns at most


def require_name(name: object) -> str:
    """A property's name: lower-case letters, digits and _ (at most 40), not a reserved dimension."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise DomainError(f"property name {name!r} must be 1–40 lower-case letters, digits or _, "
                          "starting with a letter (e.g. product_line)")
    if name in RESERVED:
        raise DomainError(f"property name {name!r} is reserved: the funnel groups by {name} on its own")
    return name


def require_value(name: str, value: object) -> str:
    """A property's value, stripped; "" removes the property."""
    if not isinstance(value, str):
        raise DomainError(f"property {name} must be text, not {type(value).__name__}")
    if not value.strip():
        return ""
    if len(value) > MAX_VALUE_LENGTH:
        raise DomainError(f"property {name} must be at most {MAX_VALUE_LENGTH} characters")
    refuse_nul({name: value})
    return require_dimension(value, f"property {name}")


def require_changes(changes: object) -> dict[str, str]:
    """A change of properties as an event carries it, `{name: value}`, every name and value checked."""
    if not isinstance(changes, Mapping) or not changes:
        raise DomainError("name at least one property to set or remove")
    if len(changes) > MAX_CHANGES:
        raise DomainError(f"at most {MAX_CHANGES} properties at a time")
    return {require_name(name): require_value(name, value) for name, value in changes.items()}


def effective_changes(current: Mapping[str, str], changes: object) -> dict[str, str]:
    """The checked changes that change something (setting a value a property has, or removing one it lacks,
    does not); refused when none does."""
    effective = {name: value for name, value in require_changes(changes).items()
                 if current.get(name, "") != value}
    if not effective:
        raise DomainError("properties are unchanged")
    return effective


def applied(current: Mapping[str, str], changes: Mapping[str, str]) -> dict[str, str]:
    """The properties after `changes`: "" removes."""
    result = dict(current)
    for name, value in changes.items():
        if value:
            result[name] = value
        else:
            result.pop(name, None)
    return result


class HasProperties:
    """What a deal, a lead and a customer share: named properties, changed by their `PropertiesChanged`
    event (each aggregate nests its own, so the event's type names it: crm.Deal.PropertiesChanged)."""

    PropertiesChanged: type

    @property
    def properties(self) -> dict[str, str]:
        return dict(self.__dict__.get("_properties", {}))

    def change_properties(self, changes: Mapping[str, str], meta: Meta) -> None:
        """Set the properties named in `changes`, remove those given "" (refused if nothing would change)."""
        self._record(self.PropertiesChanged, meta,  # type: ignore[attr-defined]
                     changes=effective_changes(self.properties, changes))


def apply_changes(aggregate: object, changes: Mapping[str, str]) -> None:
    """What a `PropertiesChanged` event does to its aggregate."""
    aggregate.__dict__["_properties"] = applied(aggregate.__dict__.get("_properties", {}), changes)
