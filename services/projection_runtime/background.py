"""The projector `crm serve` runs in the background, so that answers become fresh without a query writing.

Every serving process starts one thread; of the processes on one database (on one machine) only the one
holding the projector's lock file follows the log — several would race, each batch done by all and kept by
one. The kernel releases the lock of a process that dies, so a surviving or replacing worker takes over
within a second. The thread follows like `crm projections follow` (database outages retried with growing
pauses, logged); an error that retrying cannot mend is logged and stops it, so that it is seen (the
answers' `X-Read-Model-Position` and `/health` then show the lag growing). Read models that consumers feed
(`crm projections consume`) are refused (`FeederConflict`): logged, nothing fed, and `refused` says why
(`/health` shows it).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import tempfile
import threading
from contextlib import ExitStack, closing
from pathlib import Path
from typing import IO

from services.application import CrmApplication
from services.healing import TRANSIENT_DATABASE_ERRORS, start_when_ready
from services.projection_runtime.projector import FeederConflict, Projector
from services.projection_runtime.registry import projector_for
from services.settings import Database
from services.storage.read_model_store import ReadModelStore
from services.storage.schema_lock import advisory_lock

log = logging.getLogger(__name__)
NAME = "serve projector"
FOLLOW_POLL = 0.05  # seconds between looks at the log once caught up: a write is readable ≈ 0.1 s later
STANDBY_POLL = 1.0  # seconds between attempts to take over from the process that follows the log
STOP_WAIT = 30.0  # seconds to let a batch in progress commit at shutdown


def lock_path(database: Database) -> Path | None:
    """The lock file the serving processes of `database` share (None in memory: one process only)."""
    if database.kind == "memory":
        return None
    if database.sqlite_path:
        return Path(f"{database.sqlite_path}.projector.lock")
    where = f"{database.env['POSTGRES_HOST']}:{database.env['POSTGRES_PORT']}/{database.env['POSTGRES_DBNAME']}"
    return Path(tempfile.gettempdir()) / f"crm-projector-{hashlib.sha256(where.encode()).hexdigest()[:16]}.lock"


class BackgroundProjector:
    """One thread following the log into the read models while this process holds the lock file."""

    def __init__(self, app: CrmApplication, shared_store: ReadModelStore | None = None,
                 poll: float = FOLLOW_POLL) -> None:
        """`shared_store`: an in-memory database has one connection, so the projector must write through it."""
        self.app, self.shared_store, self.poll = app, shared_store, poll
        self.lock = lock_path(app.database)
        self.stopping = threading.Event()
        self.refused: str | None = None  # why it does not feed (another feeder does), for /health
        self.thread = threading.Thread(target=self._run, name="crm-projector", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(STOP_WAIT)

    def _run(self) -> None:
        try:
            with ExitStack() as stack:
                if self._lead(stack):
                    projector = start_when_ready(NAME, self._open, stack, self.stopping, TRANSIENT_DATABASE_ERRORS)
                    if projector is not None:
                        projector.follow(self.stopping, self.poll)
        except FeederConflict as conflict:
            self.refused = str(conflict)
            log.error("%s: %s", NAME, conflict, extra={"component": NAME, "action": "refuse"})
        except Exception:  # noqa: BLE001 - logged with its traceback; the server goes on answering
            log.exception("%s: stopped by an error that retrying cannot mend; answers will lag the log", NAME,
                          extra={"component": NAME, "action": "stop"})

    def _lead(self, stack: ExitStack) -> bool:
        """Wait until this process holds the lock file; False if stopped first."""
        if self.lock is None:
            return True
        handle = stack.enter_context(open(self.lock, "a+"))
        standing_by = False
        while not self.stopping.is_set():
            if _try_lock(handle):
                log.info("%s: this process follows the log", NAME, extra={"component": NAME, "action": "lead"})
                return True
            if not standing_by:
                log.info("%s: another process follows the log; standing by", NAME,
                         extra={"component": NAME, "action": "standby"})
                standing_by = True
            self.stopping.wait(STANDBY_POLL)
        return False

    def _open(self, opened: ExitStack) -> Projector:
        store = self.shared_store or opened.enter_context(closing(ReadModelStore(self.app.database)))
        with advisory_lock(self.app.database):  # creating tables takes turns with other starting processes
            return projector_for(self.app, store)


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
