"""Movements between two instants are counted in SQL: the query answers one row per (tier then, tier after) pair,
not every customer's tier twice (600 rows for 300 customers, read into Python and compared there); the same counts
as the reference comparison of the two instants' tiers."""

from __future__ import annotations

import random
from collections import Counter

from domain.segmentation import TIERS
from projections.segments import Movement, SegmentQueries
from projections.segments.handlers import INTERVALS
from projections.tables import micros
from services.application import CrmApplication
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0
from tests.support.many_stuck import CountingStore

CUSTOMERS = 300
DAY = 86_400_000_000  # µs


def _plant(store: ReadModelStore, seed: int) -> dict[str, tuple[str | None, str | None]]:
    """Each customer in a random tier or none (not yet registered, or forgotten) on day 10 and on day 40, changing
    on day 20; their (tier then, tier after)."""
    chance, rows, tiers = random.Random(seed), [], {}
    start = micros(T0)
    for k in range(CUSTOMERS):
        customer = f"00000000-0000-4000-8000-{k:012d}"
        before, after = (chance.choice((None, *TIERS)) for _ in range(2))
        tiers[customer] = (before, after)
        for seq, tier, valid_from, valid_to in ((1, before, start, start + 20 * DAY),
                                                (2, after, start + 20 * DAY, None)):
            if tier is not None:
                rows.append((customer, seq, valid_from, valid_to, tier, valid_from, 1, 1, 1, 100, 0, None, None, None))
    with store.transaction() as cursor:
        cursor.upsert(INTERVALS, rows)
    return tiers


def test_movements_are_counted_in_sql_one_row_per_pair_of_tiers(crm: CrmApplication) -> None:
    store = ReadModelStore(database_from_url("memory://"))
    projector_for(crm, store, ["segments"]).catch_up()
    counted_in_sql(store)
    store.close()


def counted_in_sql(store: ReadModelStore) -> None:
    """The movements of `_plant`'s customers are the reference's, from at most 12 rows (PostgreSQL's twin:
    tests/integration/test_segment_movements_postgres.py)."""
    tiers = _plant(store, seed=5)
    counting = CountingStore(store)
    rows_read: list[int] = []
    query = counting.query
    counting.query = lambda sql, params=(): rows_read.append(len(found := query(sql, params))) or found  # type: ignore[method-assign]

    found = SegmentQueries(counting).movements(T0.replace(day=11), T0.replace(day=31))  # type: ignore[arg-type]

    moves = Counter(pair for pair in tiers.values() if pair[0] != pair[1])
    order = {tier: i for i, tier in enumerate((None, *TIERS))}
    assert found == [Movement(a, b, moves[a, b]) for a, b in sorted(moves, key=lambda p: (order[p[0]], order[p[1]]))]
    assert sum(rows_read) <= len(TIERS) * (len(TIERS) + 1)  # pairs of different tiers, None included: 12
