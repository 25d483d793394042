"""An online rebuild that says "building" after each batch and pauses, so that a test can kill it mid-build
(`python -m tests.support.online_rebuild_child URL`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

from services.application import CrmApplication
from services.projection_runtime.online_rebuild import rebuild_online
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

PAUSE = 2.0  # seconds after each batch of 100 events: a build of ≈ 1,000 events outlasts a second CLI start


def slow_build(app: CrmApplication, store: ReadModelStore, names: Sequence[str],
               progress: Callable[[int, int], None]) -> int:
    """The handlers, 100 events a batch, announcing each (a `Builder`)."""
    def step(done: int, head: int) -> None:
        progress(done, head)
        print("building", done, head, flush=True)
        time.sleep(PAUSE)

    projector = projector_for(app, store, names)
    projector.catch_up(step, limit=100, strict=False)
    return min(projector.positions().values())


if __name__ == "__main__":
    application = CrmApplication(database_from_url(sys.argv[1]))
    read_store = ReadModelStore(application.database)
    print("swapped at", rebuild_online(application, read_store, [], slow_build), flush=True)
