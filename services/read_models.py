"""The read models this CRM maintains, and how to run them on the configured database."""

from __future__ import annotations

from collections.abc import Sequence

from projections.base import ReadModel
from projections.funnel import FunnelReadModel
from services.application import CrmApplication
from services.projector import Projector
from services.readstore import ReadStore

READ_MODELS: dict[str, type[ReadModel]] = {
    FunnelReadModel.name: FunnelReadModel,
}


class UnknownReadModel(ValueError):
    """A read model name that does not exist."""


def projector_for(app: CrmApplication, store: ReadStore, names: Sequence[str] = ()) -> Projector:
    """A projector over the named read models (all of them when none are named)."""
    unknown = [n for n in names if n not in READ_MODELS]
    if unknown:
        raise UnknownReadModel(f"unknown read model(s) {', '.join(unknown)}; known: {', '.join(READ_MODELS)}")
    return Projector(app, store, [READ_MODELS[n]() for n in (names or READ_MODELS)])
