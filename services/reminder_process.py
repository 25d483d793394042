"""`crm reminders run`: the unattended process that reminds owners of items that stayed too long in a stage.

Each step catches the reminders read model up (its own projector over that one read model: a `crm projections
follow` beside it is no harm, the positions' guard lets one of them apply each batch), asks it what is due by
the clock and not reminded of yet (`reminder_due`, indexed by state and due time: the clock, not an event,
makes a threshold due), and for each emits one `Reminder.Emitted` into the log. The outbox relay
(gateways/kafka/relay.py) publishes it as a CloudEvent on `crm.events` and on `crm.reminders`.

Exactly once per (item, stage entry, threshold): the reminder's id derives from those three
(`domain.reminder_rules.reminder_id`), so a second save of it — after a kill -9 between saving and the read
model seeing it, or from a second process — is refused by the log's uniqueness of (id, version) and counted as
already done. Nothing is claimed before the save, so there is no lease to wait out after a crash.

No stale reminder: before saving, the item's own events are read from the log (not the read model, which may
lag) and folded with the read model's own function (`projections.reminders.tracking.track`); if the item has
left the stage entry by then, nothing is emitted, even for a threshold passed while this process was down.
The rule for what is due is `domain.reminder_rules.due`, with the stage's thresholds read from the pipeline's
events at that moment (a threshold removed meanwhile reminds of nothing).

One process per database: like the serving processes' projector, it holds a lock file (the kernel releases it
when the process dies, so a replacement takes over within a second); faults of the database are retried with
growing pauses through `services.healing` (logged), any other error stops the process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from domain.base import Meta, utc_now
from domain.errors import DomainError
from domain.reminder_rules import Reminder, StageEntry, Threshold, due, reminder_id
from projections.reminders import DueThreshold, ReminderQueries, RemindersReadModel
from projections.reminders.tracking import entry_of, track
from services.application import ConcurrencyConflict, CrmApplication
from services.healing import TRANSIENT_DATABASE_ERRORS, follow_until_stopped
from services.projection_runtime.background import lock_path
from services.projection_runtime.courtesy import CourteousFeeder, lock_beside_projector, run_alone
from services.projection_runtime.projector import ProjectionRace, Projector
from services.storage.read_model_store import ReadModelStore

log = logging.getLogger(__name__)
NAME = "reminders"
ACTOR = "crm reminders"
POLL = 0.25  # seconds between looks for new events when nothing is due sooner (the next threshold is waited for)
BATCH = 500  # reminders looked at per step (then the read model is caught up again)
REFUSED_CAP = 10_000  # rows passed over remembered at most (≈ 2 MB); the oldest is forgotten first


@dataclass(frozen=True)
class Emission:
    """A reminder to save: made anew for each attempt (a refused save consumes an aggregate's events)."""

    entry: StageEntry
    threshold: Threshold
    owner: str
    customer_id: UUID | None
    meta: Meta

    @property
    def key(self) -> tuple[UUID, int, str]:
        return self.entry.item_id, self.entry.version, self.threshold.label

    @property
    def id(self) -> UUID:
        return reminder_id(*self.key, self.customer_id)

    def reminder(self) -> Reminder:
        return Reminder.emit(self.entry, self.threshold, self.owner, self.customer_id, self.meta)


class ReminderProcess:
    """Emits the reminders due by `clock()`, one step at a time (`run_step`), or until stopped (`follow`)."""

    def __init__(self, app: CrmApplication, store: ReadModelStore,
                 clock: Callable[[], datetime] = utc_now, batch: int = BATCH) -> None:
        self.app, self.store, self.clock, self.batch = app, store, clock, batch
        self.feeder = CourteousFeeder(NAME, Projector(app, store, [RemindersReadModel()]))
        self._days: dict[tuple[str, str], list[int | float]] = {}
        self._sent: set[tuple[UUID, int, str]] = set()  # saved here, not yet applied to its read model
        # rows the log disagrees with (the item left that entry, the threshold is not its stage's), with their
        # due_at: passed over until the read model moves them, so that they never hold the work list's head
        # (insertion-ordered, at most REFUSED_CAP: forgetting one costs a log read, never a wrong reminder)
        self._refused: dict[tuple[UUID, int, str, datetime], None] = {}
        self.queries = ReminderQueries(store, app.keys.unseal_all_marks)

    def run_step(self) -> int:
        """Catch the read model up, emit what is due now; returns events applied + reminders emitted."""
        done = self._catch_up()
        now = self.clock()
        self._days = {}  # the stages' thresholds, read once a step
        found = self._work(now)
        self._sent &= found.keys()  # those the read model has applied are no longer due
        todo = [threshold for key, threshold in found.items() if key not in self._sent]
        ready = []
        for threshold, emission in zip(todo, self.prepare_all(todo, now)):
            if emission is None:
                self._refuse(threshold)
            else:
                ready.append(emission)
        return done + self._save(ready)

    def _work(self, now: datetime) -> dict[tuple[UUID, int, str], DueThreshold]:
        """Up to `batch` due thresholds, earliest first, passing over those refused before (page by page). When
        the whole due list was read, the refused rows no longer in it (moved by the read model) are forgotten."""
        found: dict[tuple[UUID, int, str], DueThreshold] = {}
        seen: set[tuple[UUID, int, str, datetime]] = set()
        after, complete = None, False
        while len(found) < self.batch:
            page = self.queries.due(now, self.batch, after)
            for t in page:
                key = (t.item_id, t.entry_version, t.threshold, t.due_at)
                if key in self._refused:
                    seen.add(key)
                else:
                    found[key[:3]] = t
            if len(page) < self.batch:
                complete = True
                break
            after = page[-1]
        if complete:
            self._refused = {key: None for key in self._refused if key in seen}
        return dict(list(found.items())[: self.batch])

    def _refuse(self, threshold: DueThreshold) -> None:
        key = (threshold.item_id, threshold.entry_version, threshold.threshold, threshold.due_at)
        if key not in self._refused:
            self._refused[key] = None
            while len(self._refused) > REFUSED_CAP:
                del self._refused[next(iter(self._refused))]
            log.info("%s: %s of item %s (stage entry %d) is not due by the log; passed over until its read model "
                     "moves it", NAME, threshold.threshold, threshold.item_id, threshold.entry_version,
                     extra={"component": NAME, "action": "pass_over"})

    def _step_on_time(self, stop: threading.Event, poll: float) -> int:
        """A step; when it had nothing to do, wait for the next threshold to pass or `poll` seconds, whichever
        comes first, so that a reminder is emitted as its threshold passes rather than up to a poll later."""
        done = self.run_step()
        if done:
            return done
        now = self.clock()
        soonest = self.queries.next_due_at(now)
        stop.wait(poll if soonest is None else min(poll, (soonest - now).total_seconds()))
        return 1  # waited already: look again at once

    def _catch_up(self) -> int:
        """Apply the log to the read model, unless another projector (`crm projections follow`, `crm serve`'s)
        has moved it lately (`courtesy.CourteousFeeder`): their batches would race this process's."""
        return self.feeder.catch_up()

    def emit(self, threshold: DueThreshold, now: datetime) -> bool:
        """Emit the reminder for `threshold` if it is still due (`prepare`); False when it is not due (any more)
        or was emitted before."""
        reminder = self.prepare(threshold, now)
        return reminder is not None and self._save([reminder]) == 1

    def prepare(self, threshold: DueThreshold, now: datetime) -> Emission | None:
        """The reminder for `threshold` if the log says the item is still in that entry and the threshold is
        still its stage's and passed (None otherwise): the item's events read from the log and folded."""
        return self.prepare_all([threshold], now)[0]

    def prepare_all(self, found: list[DueThreshold], now: datetime) -> list[Emission | None]:
        """`prepare` for each of `found`, the items' events read in one query (one per item made the p99 from
        due to CloudEvent 2.1 s at 50 due a second on a loaded machine)."""
        events = _events_of(self.app, list(dict.fromkeys(t.item_id for t in found)))
        return [self._prepared(threshold, events[threshold.item_id], now) for threshold in found]

    def _prepared(self, threshold: DueThreshold, stored_events: list[Any], now: datetime) -> Emission | None:
        item = None
        for stored in stored_events:
            item, _ = track(item, self.app.mapper.to_sealed_event(stored))
        if item is None or item["entry_version"] != threshold.entry_version:
            return None  # it moved on: the read model will close the entry when it gets there
        entry = entry_of(item)
        found = next((t for t in due(entry, self._stage_days(entry.pipeline, entry.stage), now)
                      if t.label == threshold.threshold), None)
        if found is None:
            return None
        customer = UUID(item["customer_id"]) if item["customer_id"] else None
        return Emission(entry, found, item["owner"], customer, Meta(occurred_at=now, actor=ACTOR))

    def _save(self, emissions: list[Emission]) -> int:
        """Save a step's reminders in one transaction (one commit for many: 50 due a second kept up); if one of
        them is in the log already (a crash, another process), each again on its own. Returns how many saved."""
        if not emissions:
            return 0
        saved = emissions
        try:
            self.app.save_new(*(emission.reminder() for emission in emissions))
        except ConcurrencyConflict:  # the refused save took their events: made again, one at a time
            saved = [emission for emission in emissions if self._save_one(emission)]
        self._sent.update(emission.key for emission in emissions)
        for emission in saved:
            entry = emission.entry
            log.info("%s: reminded %s of %s %s in %s/%s (%s)", NAME, emission.owner or "nobody", entry.kind,
                     entry.item_id, entry.pipeline, entry.stage, emission.threshold.label,
                     extra={"component": NAME, "action": "emit", "item_id": str(entry.item_id),
                            "threshold": emission.threshold.label})
        return len(saved)

    def _save_one(self, emission: Emission) -> bool:
        try:
            self.app.save_new(emission.reminder())
        except ConcurrencyConflict:  # its id is in the log already: emitted before
            return False
        return True

    def _stage_days(self, pipeline: str, stage: str) -> list[int | float]:
        """A stage's dwell thresholds as the pipeline's events say now (once per step and stage)."""
        days = self._days
        if (pipeline, stage) not in days:
            try:
                days[(pipeline, stage)] = self.app.pipeline(pipeline).remind_after(stage)
            except DomainError:  # a pipeline never defined (standard ones met first in a lead): none
                days[(pipeline, stage)] = []
        return days[(pipeline, stage)]

    def follow(self, stop: threading.Event, poll: float = POLL) -> None:
        follow_until_stopped(NAME, lambda: self._step_on_time(stop, poll), stop, 0,
                             (*TRANSIENT_DATABASE_ERRORS, ProjectionRace))


def _events_of(app: CrmApplication, ids: list[UUID]) -> dict[UUID, list[Any]]:
    """Each item's stored events: one query where the recorder can (`events_of`), else one per item."""
    events_of = getattr(app.recorder, "events_of", None)
    if events_of is not None:
        return events_of(ids)
    return {item_id: list(app.recorder.select_events(item_id)) for item_id in ids}


def reminders_lock_path(app: CrmApplication) -> Path | None:
    """The lock file the reminder processes of one database share (None in memory: one process only)."""
    return lock_beside_projector(lock_path(app.database), "reminders")


def run_until_stopped(app: CrmApplication, stop: threading.Event, clock: Callable[[], datetime] = utc_now,
                      poll: float = POLL) -> None:
    """`crm reminders run`: wait for the lock file, then follow (database outages ridden out) until `stop`."""
    def start(opened: ExitStack) -> ReminderProcess:
        return ReminderProcess(app, opened.enter_context(closing(ReadModelStore(app.database))), clock)

    run_alone(NAME, reminders_lock_path(app), stop, start, poll)
