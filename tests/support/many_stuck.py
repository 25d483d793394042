"""More stuck items than one statement may bind parameters for (SQLite before 3.32: 999), planted straight into
the funnel's tables (a history of 1,200 deals would take the test minutes to build), and a store that records
the most parameters any of its statements bound."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Sequence
from uuid import UUID

from projections.funnel.rows import INTERVALS, ITEMS, VERSIONS, length_band
from projections.ports import Cursor, Store

DAY = 86_400_000_000  # µs


def plant_stuck(store: Store, count: int, pipeline: str, stage: str, t: int) -> list[UUID]:
    """`count` items of `pipeline` in `stage` since 60 days before `t`: the even ones still there, the odd ones
    leaving it a day after `t` (the two halves of the stuck items' query); their ids."""
    ids = [UUID(int=k + 1) for k in range(count)]
    entered = t - 60 * DAY
    with store.transaction() as cursor:
        cursor.upsert(ITEMS, [(str(i), pipeline, None, None, "华东", "制造业", "web", entered, stage, None, 1, entered,
                               "李娜", 100_00, 1, entered, stage, "CNY") for i in ids])
        cursor.upsert(VERSIONS, [(str(i), 1, "李娜", 100_00, entered, None) for i in ids])
        cursor.upsert(INTERVALS, [
            (str(i), 1, pipeline, stage, None, entered, *((None, None, None) if k % 2 == 0 else
                                                         (t + DAY, t + DAY - entered, length_band(t + DAY - entered))))
            for k, i in enumerate(ids)])
    return ids


class CountingStore:
    """`store`, remembering the most parameters one of its queries bound (`most`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.most = 0

    def transaction(self) -> AbstractContextManager[Cursor]:
        return self.store.transaction()

    def snapshot(self) -> AbstractContextManager[None]:
        return self.store.snapshot()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.most = max(self.most, len(params))
        return self.store.query(sql, params)
