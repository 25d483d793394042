"""Property: the inspection read model in the business's zone (Asia/Shanghai) caught up incrementally in random
batches == rebuilt from zero == replayed up to random instants, on random histories whose deals' close dates
move across months and quarters, amounts and stages change, deals are lost to competitors, customers are touched
and their tickets move (tests/support/equivalence.py). The UTC runs with every read model, partitioned and on
PostgreSQL, are tests/unit/services/projection_runtime/test_equivalence_sqlite.py and the integration tests."""

from __future__ import annotations

import random
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from domain.base import Meta
from projections.inspection import InspectionQueries, InspectionReadModel
from services.application import CrmApplication
from services.projection_runtime.model_settings import configured
from services.projection_runtime.projector import Projector
from services.projection_runtime.replay import replay_until
from services.settings import Database, database_from_url, time_zone_from_environment
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0
from tests.support.equivalence import (KINDS, PIPELINES_DEFINED, SEED_OPERATIONS, apply_history, batch_sizes,
                                       instants, operations)


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


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(ops=operations, days=instants, batch=batch_sizes)
def test_inspection_in_a_business_zone_is_the_same_every_way(monkeypatch: pytest.MonkeyPatch, ops: list,
                                                              days: list[int], batch: int) -> None:
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Shanghai")
    with tempfile.TemporaryDirectory() as folder:
        check(database_from_url(f"sqlite:///{Path(folder) / 'crm.db'}"), ops, days, batch)


def test_a_long_history_holds_every_kind_of_answer_and_is_the_same_every_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: a seeded history of 400 operations, asked at five instants, holds close dates pushed and
    pulled in, amount and stage changes, losses to competitors and inactive deals — and agrees every way."""
    monkeypatch.setenv("CRM_TIME_ZONE", "Asia/Shanghai")
    rng = random.Random(2)
    ops = SEED_OPERATIONS + [(rng.choice(KINDS), rng.randint(0, 50), rng.randint(0, 480), rng.random() < 0.1)
                             for _ in range(400)]
    found = check(database_from_url("memory://"), ops, [20, 45, 70, 100, 140], 17)
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
    assert all(seen.values()), seen
