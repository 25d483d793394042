"""Replay up to an instant: the same read-model code, fed only the events whose business time is at
or before T, into a scratch in-memory store. Its answers as of T must equal the live read models'.

Pipeline definitions are the exception: they are configuration, not history. The live read models
order every funnel by the pipeline's latest stages, and a deal may be back-dated before its
pipeline's definition (an import, or a command with an earlier `occurred_at`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.pipeline import Pipeline
from projections.read_model import ReadModel
from services.application import CrmApplication
from services.projection_runtime.projector import Projector
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url


def replay_until(app: CrmApplication, models: Sequence[ReadModel], as_of: datetime) -> ReadModelStore:
    """A fresh store holding `models` built from every event that had happened by `as_of`."""
    def known_at_t(event: Any) -> bool:
        return event.occurred_at <= as_of or isinstance(event, Pipeline.Event)

    store = ReadModelStore(database_from_url("memory://"))
    Projector(app, store, models, accept=known_at_t).catch_up()
    return store
