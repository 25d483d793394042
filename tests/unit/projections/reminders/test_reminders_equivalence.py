"""Property: the reminders read model caught up incrementally (beside the process that emits, in random batch
sizes) == rebuilt from zero == replayed up to T, at random instants and at the edges of emissions and moves."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from services.settings import database_from_url
from tests.support.equivalence import batch_sizes, instants, operations
from tests.support.reminder_histories import run_reminder_example

EXAMPLE = [("campaign", 0, 0, False), ("customer", 1, 0, False), ("customer", 2, 5, False), ("lead", 3, 0, True),
           ("deal", 4, 3, True), ("lead_step", 5, 30, True), ("deal", 6, 10, True), ("advance", 7, 50, True),
           ("ticket", 8, 2, True), ("ticket_step", 9, 30, True), ("advance", 10, 90, True), ("owner", 11, 5, True),
           ("lead", 12, 0, True), ("lead_step", 13, 2, True)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, days=instants, batch=batch_sizes)
def test_incremental_equals_rebuild_equals_replay(ops: list, days: list[int], batch: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run_reminder_example(database_from_url(f"sqlite:///{Path(folder) / 'crm.db'}"), ops, days, batch)


def test_a_known_history_holds_reminders_and_agrees(tmp_path):
    assert run_reminder_example(database_from_url(f"sqlite:///{tmp_path / 'crm.db'}"), EXAMPLE, [0, 5, 12, 40], 3) > 3
