"""`crm segments run`: the unattended process that announces customers' value-tier changes, once each.

Each step brings two read models up to the log — the segments (`projections.segments`: each customer's tier as
intervals of business time, ageing included) and this process's own record of what it announced
(`projections.segment_changes`) — then asks which customers are, by the clock, in a tier other than the one last
announced (`SegmentChangeQueries.due`, rule `domain.segment_change_rules.due_change`) and records one
`SegmentChange.Recorded` for each. The outbox relay (gateways/kafka/relay.py) publishes it as a CloudEvent on
`crm.events` and once more on `crm.segments`, keyed by the customer.

Exactly once per change: the event's id derives from (customer, sequence — how many announcements of the customer
came before) (`domain.segment_change_rules.change_id`), so a second record of that link — after a kill -9 between
recording and this process's read model seeing it, or with another tier by a process further behind — is refused by the log's uniqueness of
(id, version) and counted as done. A refusal is logged as a warning, and a look that recorded nothing is not
repeated at once (even with a full batch), so that a change refused over and over cannot make the process spin.
The announcements read model is fed by this process alone (one process per database holds the lock file) and
caught up from the log before each look, so the tier last announced is the log's, not a memory's.

Time-driven changes: the segments read model's intervals end where an age limit passes, so the next tier change
is known in advance (`next_change_after`); the process waits for it rather than polling for it, and looks
again only when that instant has come or the segments read model has moved (an event; then at most once per
LOOK_GAP) — a look reads the tiers of all customers at the instant.

The segments read model is also fed by `crm projections follow` or `crm serve`: beside them this process leaves
the feeding to them (`services.projection_runtime.courtesy`) and takes over 2 s after they stop.
Faults of the database are retried with growing pauses through `services.healing` (logged).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, closing
from datetime import datetime
from pathlib import Path

from domain.base import Meta, utc_now
from domain.segment_change_rules import SegmentChange, TierChange
from projections.segment_changes import SegmentChangeQueries, SegmentChangesReadModel
from projections.segments import SegmentsReadModel
from services.application import ConcurrencyConflict, CrmApplication
from services.healing import TRANSIENT_DATABASE_ERRORS, follow_until_stopped
from services.projection_runtime.background import lock_path
from services.projection_runtime.courtesy import CourteousFeeder, lock_beside_projector, run_alone
from services.projection_runtime.projector import ProjectionRace, Projector
from services.storage.read_model_store import ReadModelStore

log = logging.getLogger(__name__)
NAME = "segments"
ACTOR = "crm segments"
POLL = 0.25  # seconds between looks for new events when no tier change falls due sooner
BATCH = 500  # changes recorded per step (then the read models are caught up again)
# Seconds at least between two looks caused by events (a change by ageing is looked for at its instant): a look
# reads the tier of every customer at the instant, ≈ 0.2 s with 50,000 customers on PostgreSQL (loaded machine),
# so a steady flow of events costs at most a fifth of a core, and an event's change is announced ≤ 1 s later.
LOOK_GAP = 1.0


class SegmentChangeProcess:
    """Announces the tier changes due by `clock()`, one step at a time (`run_step`), or until stopped (`follow`)."""

    def __init__(self, app: CrmApplication, store: ReadModelStore, clock: Callable[[], datetime] = utc_now,
                 batch: int = BATCH, look_gap: float = LOOK_GAP) -> None:
        self.app, self.clock, self.batch, self.look_gap = app, clock, batch, look_gap
        self.segments = CourteousFeeder(NAME, Projector(app, store, [SegmentsReadModel()]))
        self.announcements = Projector(app, store, [SegmentChangesReadModel()])
        self.queries = SegmentChangeQueries(store)
        self._dirty = True  # the segments read model moved since the last look: tiers may have changed
        self._position: int | None = None  # the segments read model's position at the last look
        self._looked_at = float("-inf")  # when (monotonic) the last look was
        self._upcoming: datetime | None = None  # the next tier change by the clock alone, as of the last look

    def run_step(self) -> int:
        """Catch the read models up, record the changes due now; returns events applied + changes recorded."""
        moved = self.segments.catch_up()
        done = moved + self.announcements.catch_up(strict=False)
        now, position = self.clock(), self.segments.position()
        self._dirty = self._dirty or moved > 0 or position != self._position  # fed by this process, or another
        if self._wait_to_look(now) != 0:
            return done
        self._position, self._dirty, self._looked_at = position, False, time.monotonic()
        changes = self.queries.due(now, self.batch)
        self._upcoming = self.queries.next_change_after(now)
        saved = self._save(changes, now)
        if len(changes) == self.batch and saved:  # more may be due: look again at once (not when all were refused:
            self._dirty, self._looked_at = True, float("-inf")  # the same batch would come back, a spin)
        return done + saved

    def _wait_to_look(self, now: datetime) -> float | None:
        """Seconds until the next look is due: 0 now — a tier change falls due by the clock, or the segments read
        model moved and the last look is `look_gap` old — None: only when something moves."""
        waits = []
        if self._upcoming is not None:
            waits.append(max(0.0, (self._upcoming - now).total_seconds()))
        if self._dirty:
            waits.append(max(0.0, self._looked_at + self.look_gap - time.monotonic()))
        return min(waits, default=None)

    def _save(self, changes: list[TierChange], now: datetime) -> int:
        """Record a step's changes in one transaction; if one of them is in the log already (recorded before a
        crash), each again on its own. Returns how many were recorded now."""
        if not changes:
            return 0
        meta = Meta(occurred_at=now, actor=ACTOR)
        saved = changes
        try:
            self.app.save_new(*(SegmentChange.record(change, meta) for change in changes))
        except ConcurrencyConflict:  # the refused save took their events: made again, one at a time
            saved = [change for change in changes if self._save_one(change, meta)]
        for change in saved:
            log.info("%s: customer %s from %s to %s at %s", NAME, change.customer_id, change.old_tier or "(none)",
                     change.new_tier or "(none)", change.changed_at.isoformat(),
                     extra={"component": NAME, "action": "announce", "customer_id": str(change.customer_id),
                            "old_tier": change.old_tier, "new_tier": change.new_tier})
        return len(saved)

    def _save_one(self, change: TierChange, meta: Meta) -> bool:
        try:
            self.app.save_new(SegmentChange.record(change, meta))
        except ConcurrencyConflict:  # its id is in the log already: announced before (this read model is behind)
            log.warning("%s: customer %s's change number %d from %s to %s is in the log already (id %s)", NAME,
                        change.customer_id, change.sequence, change.old_tier or "(none)", change.new_tier or "(none)",
                        change.id, extra={"component": NAME, "action": "refused", "change_id": str(change.id)})
            return False
        return True

    def _step_on_time(self, stop: threading.Event, poll: float) -> int:
        """A step; when it had nothing to do, wait for the next look (a tier change by ageing, or the end of the
        gap after events) or `poll` seconds, whichever comes first, so that a change by ageing is announced as it
        falls due rather than up to a poll later."""
        done = self.run_step()
        if done:
            return done
        wait = self._wait_to_look(self.clock())
        stop.wait(poll if wait is None else min(poll, wait))
        return 1  # waited already: look again at once

    def follow(self, stop: threading.Event, poll: float = POLL) -> None:
        retried = (*TRANSIENT_DATABASE_ERRORS, ProjectionRace)
        follow_until_stopped(NAME, lambda: self._step_on_time(stop, poll), stop, 0, retried)


def run_until_stopped(app: CrmApplication, stop: threading.Event, clock: Callable[[], datetime] = utc_now,
                      poll: float = POLL) -> None:
    """`crm segments run`: wait for the lock file (`segments_lock_path`), then follow (database outages ridden
    out) until `stop`."""
    def start(opened: ExitStack) -> SegmentChangeProcess:
        return SegmentChangeProcess(app, opened.enter_context(closing(ReadModelStore(app.database))), clock)

    run_alone(NAME, segments_lock_path(app), stop, start, poll)


def segments_lock_path(app: CrmApplication) -> Path | None:
    """The lock file the segment processes of one database share (None in memory: one process only)."""
    return lock_beside_projector(lock_path(app.database), "segment-changes")
