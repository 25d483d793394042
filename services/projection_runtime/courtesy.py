"""What an unattended process needs to feed a read model that `crm projections follow` or `crm serve` may feed
too, and to run alone on its database (`run_alone`): leave the feeding to another projector while it moves the read model,
and a lock file held for as long as the process lives.

Why courtesy: two projectors over one read model race — each batch is computed by both and kept by one, and the
loser logs a warning and pauses. The process watches the read model's position between its steps: if another
projector moved it in the last `GRACE` seconds, it only reads; once that one stops, it feeds again. Read models
fed by consumers (`crm projections consume`) are only read (`FeederConflict`).
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from services.healing import TRANSIENT_DATABASE_ERRORS, start_when_ready
from services.projection_runtime.projector import FeederConflict, ProjectionRace, Projector

log = logging.getLogger(__name__)
GRACE = 2.0  # seconds another projector's last move of the read model leaves the feeding to it
STANDBY = 1.0  # seconds between attempts to take the lock from the process that holds it


class CourteousFeeder:
    """Catches one read model up, unless another projector is feeding it."""

    def __init__(self, owner: str, projector: Projector) -> None:
        (self.name,) = projector.positions()
        self.owner, self.projector = owner, projector
        self._seen: int | None = None  # the position as this process last left it
        self._other_moved_at = float("-inf")
        self._read_only = False

    def position(self) -> int:
        return self.projector.positions()[self.name]

    def catch_up(self) -> int:
        """Events applied (0 when another projector feeds the read model, or consumers do)."""
        if self._read_only:
            return 0
        now, current = time.monotonic(), self.position()
        if self._seen is not None and current != self._seen:
            self._other_moved_at = now
        self._seen = current
        if now - self._other_moved_at < GRACE:
            return 0
        try:
            applied = self.projector.catch_up(strict=False)
        except ProjectionRace:  # another projector applied that batch: it is in the read model now
            return 0
        except FeederConflict as conflict:
            log.info("%s: %s; reading the read model they feed", self.owner, conflict,
                     extra={"component": self.owner, "action": "read_only"})
            self._read_only = True
            return 0
        self._seen = self.position()
        return applied


def lock_beside_projector(projector_lock: Path | None, name: str) -> Path | None:
    """The lock file of the `name` processes of a database, beside its projector's (`background.lock_path`)."""
    return None if projector_lock is None else projector_lock.with_name(projector_lock.name.replace("projector", name))


def hold_lock(owner: str, path: Path | None, stack: ExitStack, stop: threading.Event) -> bool:
    """Wait until this process holds the lock file at `path` (None: nothing to share, in memory); False if
    stopped first. The kernel releases it when the process dies, so a replacement takes over within `STANDBY`."""
    if path is None:
        return True
    handle = stack.enter_context(open(path, "a+"))
    waiting = False
    while not stop.is_set():
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not waiting:
                log.info("%s: another process runs; standing by", owner, extra={"component": owner, "action": "standby"})
                waiting = True
            stop.wait(STANDBY)
            continue
        log.info("%s: this process runs", owner, extra={"component": owner, "action": "lead"})
        return True
    return False


def run_alone(owner: str, path: Path | None, stop: threading.Event, start: Callable[[ExitStack], Any],
              poll: float) -> None:
    """Wait for the lock file at `path`, then `start(opened)` a process (retried while the database is away; what
    it opens entered into `opened`) and let it `follow(stop, poll)` until `stop`."""
    with ExitStack() as stack:
        if not hold_lock(owner, path, stack, stop):
            return
        process = start_when_ready(owner, start, stack, stop, TRANSIENT_DATABASE_ERRORS)
        if process is not None:
            process.follow(stop, poll)
