"""The inspection read model's equivalence on one database: a random history applied while the read model follows
at its syncs, then incremental == replay up to T == rebuild at instants (tests/unit/projections/inspection and
tests/integration/test_inspection_equivalence_postgres.py), and a seeded long history that holds every kind of
answer (so that the property is not vacuous)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from domain.base import Meta
from projections.inspection import InspectionQueries, InspectionReadModel
from services.application import CrmApplication
from services.projection_runtime.model_settings import configured
from services.projection_runtime.projector import Projector
from services.projection_runtime.replay import replay_until
from services.settings import Database, time_zone_from_environment
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0
from hypothesis import strategies as st

from tests.support.equivalence import KINDS, PIPELINES_DEFINED, SEED_OPERATIONS, apply_history

INSPECTION_KINDS = KINDS + ("close",) * 3  # more close dates moved from where they stand, across periods
inspection_operations = st.lists(
    st.tuples(st.sampled_from(INSPECTION_KINDS), st.integers(0, 50), st.integers(0, 20 * 24), st.booleans()),
    min_size=20, max_size=90,
).map(lambda ops: SEED_OPERATIONS + ops)


def answers(app: CrmApplication, store: ReadModelStore, as_of: datetime) -> dict[str, Any]:
    return InspectionQueries(store, app.keys.unseal_all_marks).summary(as_of, time_zone_from_environment())


def check(database: Database, ops: list, days: list[int], batch: int) -> dict[str, dict[str, Any]]:
    """Apply the history (the read model following at its syncs), then incremental == replay == rebuild at
    T0 + days; returns the answers, by instant."""
    app = CrmApplication(database)
    app.ensure_default_pipelines(Meta(occurred_at=PIPELINES_DEFINED))
    live = ReadModelStore(database)
    projector = Projector(app, live, [configured(InspectionReadModel)])
    apply_history(app, ops, on_sync=lambda: projector.catch_up(limit=batch))
    projector.catch_up(limit=batch)
    found = {}
    for as_of in [T0 + timedelta(days=day, hours=day % 7) for day in days]:
        found[str(as_of)] = incremental = answers(app, live, as_of)
        replayed = replay_until(app, [configured(InspectionReadModel)], as_of)
        assert incremental == answers(app, replayed, as_of), f"replay_until differs at {as_of}"
        replayed.close()
    projector.rebuild()
    for as_of in [T0 + timedelta(days=day, hours=day % 7) for day in days]:
        assert found[str(as_of)] == answers(app, live, as_of), f"rebuild differs at {as_of}"
    live.close()
    app.close()
    return found


def long_history() -> list[tuple[str, int, int, bool]]:
    """400 seeded operations whose answers hold close dates pushed, pulled in, moved within and set, amount and
    stage changes, losses to competitors and inactive deals (`coverage`)."""
    rng = random.Random(10)
    return SEED_OPERATIONS + [(rng.choice(INSPECTION_KINDS), rng.randint(0, 50), rng.randint(0, 480), rng.random() < 0.1)
                              for _ in range(400)]


LONG_HISTORY_DAYS = [20, 45, 70, 100, 140]


def coverage(found: dict[str, dict[str, Any]]) -> dict[str, int]:
    """How many of each kind of answer the answers at all instants hold."""
    seen: dict[str, int] = dict.fromkeys(("pushed", "pulled_in", "within", "set", "amounts", "stages", "competitors",
                                          "inactive", "won", "lost"), 0)
    for answer in found.values():
        for window in ("slippage:7", "slippage:90"):
            for direction, count in answer[window]["counts"].items():
                seen[direction] += count
        seen["amounts"] += len(answer["changes:90"]["amounts"])
        seen["stages"] += len(answer["changes:90"]["stages"])
        seen["competitors"] += len(answer["winloss:None"]["totals"]["competitors"])
        seen["inactive"] += len(answer["inactive:3"]["deals"])
        seen["won"] += answer["winloss:None"]["totals"]["won"]
        seen["lost"] += answer["winloss:None"]["totals"]["lost"]
    return seen
