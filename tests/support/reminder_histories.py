"""Random histories with reminders in them: tests/support/equivalence.py's histories, with stage thresholds on
the standard pipelines and the reminder process stepping at each sync point with a clock that moves on, so the
log holds reminders of entries that stayed, that were left later, and (as time passes between syncs) that were
left before the process looked. For the reminders read model's incremental = rebuild = replay check."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from projections.reminders import ReminderQueries, RemindersReadModel
from services.application import CrmApplication
from services.commands import SetStageReminders
from services.projection_runtime.projector import Projector
from services.projection_runtime.replay import replay_until
from services.reminder_process import ReminderProcess
from services.settings import Database
from services.storage.read_model_store import ReadModelStore
from tests.conftest import T0, at
from tests.support.equivalence import apply_history

THRESHOLDS = {("sales", "lead"): [1, 5], ("sales", "first_contact"): [0.5, 2], ("sales", "proposal"): [3],
              ("marketing", "captured"): [0.5, 3], ("marketing", "assigned"): [2], ("service", "in_progress"): [1]}
DAYS_PER_SYNC = 4  # the process's clock moves on this much at each sync point: ≈ 40 syncs cover the history


class SteppingClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def answers(app: CrmApplication, store: ReadModelStore, instants: list[datetime]) -> dict[datetime, Any]:
    queries = ReminderQueries(store, app.keys.unseal_all_marks)
    return {t: (queries.summary(t), [r.to_dict() for r in queries.open_at(t, owner="李娜")]) for t in instants}


def scanned_open(store: ReadModelStore, t: datetime) -> list[str]:
    """The reminders open at `t` by reading every reminder emitted by then (open_at's query before span
    classes): the reference the indexed query is held equal to."""
    from projections.tables import micros

    at_t = micros(t)
    return [reminder for (reminder,) in store.query(
        "SELECT r.reminder_id FROM reminders_emitted r JOIN reminder_entries e ON e.item_id = r.item_id AND "
        "e.entry_version = r.entry_version JOIN reminder_items i ON i.item_id = r.item_id "
        "WHERE r.emitted_at <= ? AND e.entered_at <= ? AND e.left_at > ? ORDER BY r.due_at, r.reminder_id",
        [at_t, at_t, at_t])]


def run_reminder_example(database: Database, ops: list[tuple[str, int, int, bool]], days: list[int],
                         batch: int) -> int:
    """Apply the history with reminders; check the three paths agree at the instants, at every reminder's
    emission and at every instant an entry was left; returns how many reminders the log holds."""
    app = CrmApplication(database)
    app.ensure_default_pipelines(at(-30, "setup"))
    for (pipeline, stage), thresholds in THRESHOLDS.items():
        app.set_stage_reminders(SetStageReminders(pipeline, stage, thresholds), at(-29, "admin"))
    live = ReadModelStore(database)
    follower = Projector(app, live, [RemindersReadModel()])
    clock = SteppingClock()
    process = ReminderProcess(app, live, clock)

    def sync() -> None:
        follower.catch_up(limit=batch)
        clock.now += timedelta(days=DAYS_PER_SYNC)
        process.run_step()

    apply_history(app, ops, sync)
    clock.now = T0 + timedelta(days=400)
    process.run_step()
    follower.catch_up(limit=batch)
    emitted = live.query("SELECT emitted_at FROM reminders_emitted", [])
    left = live.query("SELECT left_at FROM reminder_entries WHERE left_at < ?", [2**62])
    from projections.tables import from_micros

    instants = sorted({T0 + timedelta(days=d, hours=d % 7) for d in days}
                      | {from_micros(at) for (at,) in emitted[:5] + left[:5]}
                      | {from_micros(at) - timedelta(microseconds=1) for (at,) in emitted[:3] + left[:3]})
    incremental = answers(app, live, instants)
    for t in instants:  # the span-class query finds what a scan of every reminder finds
        assert [str(r.reminder_id) for r in ReminderQueries(live, app.keys.unseal_all_marks).open_at(t)] == \
            scanned_open(live, t), f"reminders: open_at by span class differs from the scan at {t}"
    for t in instants:
        replayed = replay_until(app, [RemindersReadModel()], t)
        assert answers(app, replayed, [t]) == {t: incremental[t]}, f"reminders: replay_until differs at {t}"
        replayed.close()
    follower.rebuild()
    assert answers(app, live, instants) == incremental, "reminders: rebuild differs"
    live.close()
    app.close()
    return len(emitted)
