"""The projector `crm serve` runs in the background, so that answers become fresh without a query writing.

Every serving process starts one thread; of the processes on one database (on one machine) only the one
holding the projector's lock file follows the log — several would race, each batch done by all and kept by
one. The kernel releases the lock of a process that dies, so a surviving or replacing worker takes over
within a second. The thread follows like `crm projections follow` (database outages retried with growing
pauses, logged); an error that retrying cannot mend is logged and stops it, so that it is seen (the
answers' `X-Read-Model-Position` and `/health` then show the lag growing). Read models that consumers feed
(`crm projections consume`) are refused (`FeederConflict`): logged, nothing fed, and `refused` says why
(`/health` shows it).

A read model whose tables another version made (`online`: the server kept them, schema_change) is built
online (`online_rebuild`) by a second thread of the process that follows the log, while this one feeds the
others; its queries answer 503 with the build's progress meanwhile. After the swap the follower feeds them all.
If another process is building it (an operator's `rebuild --online`), it waits for that one and looks again;
if it cannot be built online at all (PostgreSQL without the green schema `crm db migrate` makes, a consumer
group feeding it), it is rebuilt in place as before (its tables dropped, answers partial until caught up).
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
from services.projection_runtime.online_rebuild import OnlineRebuildBusy, OnlineRebuildRefused, rebuild_online
from services.projection_runtime.projector import FeederConflict, Projector
from services.projection_runtime.registry import READ_MODELS
from services.projection_runtime.schema_change import changed_schemas
from services.settings import Database
from services.storage.read_model_store import ReadModelStore
from services.storage.schema_lock import advisory_lock

log = logging.getLogger(__name__)
NAME = "serve projector"
FOLLOW_POLL = 0.05  # seconds between looks at the log once caught up: a write is readable ≈ 0.1 s later
STANDBY_POLL = 1.0  # seconds between attempts to take over from the process that follows the log
STOP_WAIT = 30.0  # seconds to let a batch in progress commit at shutdown
BUSY_POLL = 5.0  # seconds between looks at another process's online rebuild of a read model whose tables changed


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
                 poll: float = FOLLOW_POLL, online: bool = False) -> None:
        """`shared_store`: an in-memory database has one connection, so the projector must write through it.
        `online`: read models whose tables changed are built online (see the module's docstring)."""
        self.app, self.shared_store, self.poll, self.online = app, shared_store, poll, online
        self.lock = lock_path(app.database)
        self.stopping = threading.Event()
        self.built = threading.Event()  # the online build ended (or the server stops): follow them all
        self.changed: list[str] | None = None  # read models built online, found when this process leads
        self.refused: str | None = None  # why it does not feed (another feeder does), for /health
        self.thread = threading.Thread(target=self._run, name="crm-projector", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.built.set()
        self.thread.join(STOP_WAIT)

    def _run(self) -> None:
        try:
            with ExitStack() as stack:
                if self._lead(stack):
                    projector = start_when_ready(NAME, self._open, stack, self.stopping, TRANSIENT_DATABASE_ERRORS)
                    if projector is not None and self.changed:
                        projector = self._follow_while_building(projector, stack)
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
            if try_lock(handle):
                log.info("%s: this process follows the log", NAME, extra={"component": NAME, "action": "lead"})
                return True
            if not standing_by:
                log.info("%s: another process follows the log; standing by", NAME,
                         extra={"component": NAME, "action": "standby"})
                standing_by = True
            self.stopping.wait(STANDBY_POLL)
        return False

    def _open(self, opened: ExitStack) -> Projector:
        """A projector over the read models to follow: all, except, the first time, those built online."""
        store = self.shared_store or opened.enter_context(closing(ReadModelStore(self.app.database)))
        with advisory_lock(self.app.database):  # creating tables takes turns with other starting processes
            if self.changed is None:
                models = [model() for model in READ_MODELS.values()]
                self.changed = changed_schemas(store, models) if self.online else []
            return Projector(self.app, store, [READ_MODELS[name]() for name in READ_MODELS
                                               if name not in self.changed])

    def _follow_while_building(self, projector: Projector, stack: ExitStack) -> Projector | None:
        """Feed the unchanged read models while another thread builds the changed ones online; then a
        projector over them all (None if stopped meanwhile)."""
        names, self.changed = self.changed or [], []
        builder = threading.Thread(target=self._build, args=(names,), name="crm-online-rebuild", daemon=True)
        builder.start()
        if projector.models:
            projector.follow(self.built, self.poll)
        self.built.wait()
        builder.join()
        if self.stopping.is_set():
            return None
        return start_when_ready(NAME, self._open, stack, self.stopping, TRANSIENT_DATABASE_ERRORS)

    def _build(self, names: list[str]) -> None:
        """Build `names` online and swap them in; another process building them is waited for."""
        log.info("%s: tables of %s changed; building them online", NAME, ", ".join(names),
                 extra={"component": NAME, "action": "build_online"})
        try:
            with closing(ReadModelStore(self.app.database)) as store:
                while names and not self.stopping.is_set():
                    try:
                        rebuild_online(self.app, store, names, on_progress=self._unless_stopping)
                        return
                    except OnlineRebuildBusy:
                        self.stopping.wait(BUSY_POLL)
                        names = changed_schemas(store, [READ_MODELS[name]() for name in names])
        except _Stopping:
            pass
        except (OnlineRebuildRefused, FeederConflict) as refused:
            log.error("%s: cannot build %s online (%s); rebuilding in place instead: answers partial until caught "
                      "up", NAME, ", ".join(names), refused, extra={"component": NAME, "action": "build_in_place"})
        except Exception:  # noqa: BLE001 - logged with its traceback; rebuilt in place, as before online builds
            log.exception("%s: the online build of %s failed; rebuilding in place instead", NAME, ", ".join(names),
                          extra={"component": NAME, "action": "build_in_place"})
        finally:
            self.built.set()

    def _unless_stopping(self, done: int, head: int) -> None:
        if self.stopping.is_set():
            raise _Stopping()


class _Stopping(Exception):
    """The server stops during an online build: the build ends (its leftovers cleared), the old tables stay."""


def try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
