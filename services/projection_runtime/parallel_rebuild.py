"""A full rebuild with the read models shared out among worker processes (`crm projections rebuild --jobs N`).

Every read model has its own position and its own tables, so each worker is an ordinary projector over its
share: it empties and rebuilds those models batch by batch, each batch committed with its positions, and
keeps the exactly-once guarantee of one projector. The parent creates the tables first (concurrent
CREATE TABLE IF NOT EXISTS can collide on PostgreSQL) and reports progress from the positions.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

from services.application import CrmApplication
from services.projection_runtime.projector import DEFAULT_BATCH
from services.projection_runtime.registry import projector_for
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url

# Seconds each read model took to rebuild alone over 100,000 demo events on PostgreSQL (2026-11-24):
# shares are balanced by these; a model not listed counts as the heaviest.
REBUILD_COST = {"funnel": 9.6, "timeline": 5.2, "campaigns": 5.4, "segments": 3.1, "tickets": 0.5}
POLL_SECONDS = 0.5


def default_jobs() -> int:
    """One worker per core."""
    return os.cpu_count() or 1


def shares(names: Sequence[str], jobs: int) -> list[list[str]]:
    """`names` split into at most `jobs` non-empty shares of similar cost (heaviest first, to the lightest)."""
    heaviest = max(REBUILD_COST.values())
    split: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(names))))]
    cost = [0.0] * len(split)
    for name in sorted(names, key=lambda n: -REBUILD_COST.get(n, heaviest)):
        lightest = cost.index(min(cost))
        split[lightest].append(name)
        cost[lightest] += REBUILD_COST.get(name, heaviest)
    return split


def rebuild_share(url: str, names: list[str], limit: int) -> int:
    """In a worker: empty and rebuild these read models; returns the log positions covered."""
    app = CrmApplication(database_from_url(url))
    store = ReadModelStore(app.database)
    try:
        return projector_for(app, store, names).rebuild(limit=limit)
    finally:
        store.close()
        app.close()


def rebuild_in_parallel(app: CrmApplication, store: ReadModelStore, names: Sequence[str], jobs: int,
                        on_progress: Callable[[int, int], None] = lambda done, head: None,
                        limit: int = DEFAULT_BATCH) -> int:
    """Rebuild the named read models (all when none) in up to `jobs` processes; returns the log positions
    covered by the slowest share. An embedded (SQLite or in-memory) log is rebuilt in this process."""
    projector = projector_for(app, store, names)
    groups = shares([m.name for m in projector.models], jobs)
    if app.database.kind != "postgresql" or len(groups) == 1:
        return projector.rebuild(on_progress, limit)
    with ProcessPoolExecutor(len(groups), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(rebuild_share, app.database.url, group, limit) for group in groups]
        while wait(futures, POLL_SECONDS, FIRST_EXCEPTION).not_done:
            on_progress(min(projector.positions().values()), app.event_count())
        return max(future.result() for future in futures)
