"""Read models made with the installation's settings their handlers depend on (the funnel's time zone).

Why here: a read model is made in many places (the follower, the online and bulk rebuilds, `crm projections
verify`, the fingerprint a query compares with the stored one); each makes it through `configured`, so all
agree on the zone its days are the days of, and a process whose CRM_TIME_ZONE differs from the one the tables
were built with sees another fingerprint: `crm serve` rebuilds them online (schema_change), a query answers
503/exit 1 "being rebuilt" meanwhile, and a follower refuses to feed them (`require_own_schemas`) rather
than mixing the days of two zones in one table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from projections.read_model import ReadModel
from services.settings import time_zone_from_environment

Model = TypeVar("Model", bound=ReadModel)

SETTINGS: dict[str, Callable[[], Any]] = {"zone": time_zone_from_environment}
"""Each setting a read model may declare (`ReadModel.settings`) → how the installation gives it."""


def configured(model: type[Model]) -> Model:
    """`model` made with the installation's value of each setting it declares."""
    return model(**{name: SETTINGS[name]() for name in model.settings})  # type: ignore[call-arg]


def settings_key(model: type[ReadModel]) -> tuple[str, ...]:
    """The installation's values of `model`'s settings, as text (a cache key of its fingerprint)."""
    return tuple(str(SETTINGS[name]()) for name in model.settings)
