"""Shared dependencies: the application, and read stores caught up with named read models."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress

from fastapi import Request

from services.application import CrmApplication
from services.projection_runtime.projector import ProjectionRace
from services.projection_runtime.registry import projector_for
from services.storage.read_model_store import ReadModelStore


async def crm(request: Request) -> CrmApplication:
    return request.app.state.crm


def caught_up(*read_models: str) -> Callable[[Request], ReadModelStore]:
    """A dependency: the read store, after bringing `read_models` up to the head of the log.

    The projector is made once per app (making one creates missing tables), then reused.
    """

    def store(request: Request) -> ReadModelStore:
        state = request.app.state
        projector = state.projectors.get(read_models)
        if projector is None:
            projector = state.projectors[read_models] = projector_for(state.crm, state.store, list(read_models))
        with suppress(ProjectionRace):  # another request or process is bringing it up to date
            projector.catch_up()
        return state.store

    return store
