"""Runs read models over the event log, exactly once: each batch's writes and the new position
are committed in one transaction, so a crash never double-counts or skips an event.

A read model whose handler cannot apply an event (a history that breaks the rules got into the log)
is STOPPED, never crash-looped: the batch is rolled back, the failure (log position, aggregate, event
type, reason) is recorded in `projection_failures`, and the batch is done again without it; that read
model then applies the events before the bad one and waits there, while the others go on. Stopping the
read model rather than quarantining the aggregate keeps every answer it gives true: read models sum over
many aggregates (funnel tallies, campaign returns), so leaving one aggregate out would make totals quietly
wrong. Queries of a stopped read model raise `ReadModelStopped` with the failure instead of answering.
Repair: record compensating events with the commands, then `resume` — retrying the event (after a code
fix), or passing it by, recorded in `projection_skips` so that rebuilds pass it by too.

One feeder per read model: this follower, or the partitioned projector (`partitioned.py`, `crm projections
consume`) — both on one read model would apply every event twice. The follower refuses (`FeederConflict`) a
read model that has partition offsets (`projection_offsets`); the partitioned projector one whose position
here is past 0. Each checks inside the transaction that commits its progress (the follower after moving its
position, the other with its positions' rows locked), so two starting at once cannot both win. A rebuild
(`reset`) forgets the partition offsets: the follower then feeds the read models it rebuilt. Likewise a batch
refuses read models another version of the code has set up since (`require_own_schemas`: after a newer release's
`crm projections rebuild --online` swapped its tables in, an older follower must not write them).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from eventsourcing.utils import get_topic

from projections.ports import Cursor
from projections.read_model import ReadModel, Rows
from projections.tables import Table
from services.application import CrmApplication
from services.storage.read_model_store import ReadModelStore

POSITIONS = Table("projection_positions", (("name", "TEXT"), ("position", "BIGINT")), ("name",))
SCHEMAS = Table("projection_schemas", (("name", "TEXT"), ("fingerprint", "TEXT")), ("name",))
_EVENT_COLUMNS = (("position", "BIGINT"), ("aggregate_id", "TEXT"), ("event_type", "TEXT"), ("reason", "TEXT"))
FAILURES = Table("projection_failures", (("name", "TEXT"), *_EVENT_COLUMNS, ("failed_at", "TEXT")), ("name",))
SKIPS = Table("projection_skips", (("name", "TEXT"), *_EVENT_COLUMNS, ("skipped_at", "TEXT")), ("name", "position"))
log = logging.getLogger(__name__)
DEFAULT_BATCH = 20000  # measured on 1M events: +17% over 5,000; memory depends on the batch, not the log
# The partitioned projector's tables (partitioned.py): made here too, so that the follower can ask them.
PARTITION_COLUMNS = 'name TEXT, "partition" INTEGER, "offset" BIGINT'  # quoted: (non-)reserved words in SQL
PARTITION_EVENT_COLUMNS = "aggregate_id TEXT, event_type TEXT, reason TEXT"
PARTITION_DDL = (
    f"CREATE TABLE IF NOT EXISTS projection_offsets ({PARTITION_COLUMNS}, position BIGINT, "
    'PRIMARY KEY (name, "partition"))',
    f"CREATE TABLE IF NOT EXISTS projection_partition_failures ({PARTITION_COLUMNS}, {PARTITION_EVENT_COLUMNS}, "
    'failed_at TEXT, PRIMARY KEY (name, "partition"))',
    f"CREATE TABLE IF NOT EXISTS projection_partition_skips ({PARTITION_COLUMNS}, {PARTITION_EVENT_COLUMNS}, "
    'skipped_at TEXT, PRIMARY KEY (name, "partition", "offset"))',
    "CREATE TABLE IF NOT EXISTS projection_references (name TEXT, aggregate_id TEXT, version INTEGER, "
    "PRIMARY KEY (name, aggregate_id))",
)
# Taken first by a transaction that replaces read models' tables (the online swap, the bulk write): a follower's
# batch in progress (its position, then its tables) commits before, the next one waits — never a deadlock.
HOLD_POSITIONS = "LOCK TABLE projection_positions IN SHARE ROW EXCLUSIVE MODE"
CARRIED_ROWS = 20_000  # rows kept from one batch to the next (the hot ones: tallies, counters), not read back


def transient_errors() -> tuple[type[Exception], ...]:
    """The database went away or is busy: no event is at fault, so the batch fails as a whole and is retried.
    A function, evaluated only when an `except` meets an exception: services.healing imports psycopg
    (≈ 0.1 s), which a query reading a position from this module on SQLite need not pay."""
    from services.healing import TRANSIENT_DATABASE_ERRORS

    return (*TRANSIENT_DATABASE_ERRORS, sqlite3.OperationalError)


def schema_fingerprint(model: ReadModel) -> str:
    """A digest of the DDL of a read model's tables, of its `revision` and of the settings it was built with
    (`built_with`): it changes whenever a table or index does, or what the handlers write (revision 0 and no
    setting add nothing, so older fingerprints stay)."""
    ddl = "\n".join(statement for table in model.tables for statement in table.ddl())
    ddl += f"\nrevision {model.revision}" if model.revision else ""
    ddl += f"\nbuilt with {built}" if (built := model.built_with()) else ""  # e.g. the funnel's time zone
    return hashlib.sha256(ddl.encode()).hexdigest()[:16]


def start_positions(cursor: Cursor, names: Sequence[str]) -> None:
    """Create the positions table if missing and start `names` at 0 (names already there keep theirs)."""
    for statement in POSITIONS.ddl():
        cursor.execute(statement)
    cursor.executemany("INSERT INTO projection_positions (name, position) VALUES (?, 0) "
                       "ON CONFLICT (name) DO NOTHING", [(name,) for name in names])


def advance_position(cursor: Cursor, name: str, old: int, new: int) -> bool:
    """Move `name` from `old` to `new`; False when someone else moved it first (nothing changes then)."""
    cursor.execute("UPDATE projection_positions SET position = ? WHERE name = ? AND position = ?", (new, name, old))
    return cursor.rowcount == 1


class ProjectionRace(RuntimeError):
    """Another projector advanced the same read model first; this batch was rolled back."""


class FeederConflict(RuntimeError):
    """A read model is fed by the other kind of feeder (see the module's docstring); nothing was applied."""


def require_no_partition_feeder(cursor: Cursor, names: Sequence[str]) -> None:
    """Raise FeederConflict if a consumer group (`crm projections consume`) feeds any of `names`."""
    cursor.execute(f"SELECT DISTINCT name FROM projection_offsets WHERE name IN ({_marks(names)[0]})", list(names))
    fed = sorted(name for (name,) in cursor.fetchall())
    if fed:
        raise FeederConflict(
            f"read model(s) {', '.join(fed)} are fed per partition by `crm projections consume` (projection_offsets), "
            "so the log follower (`crm serve`'s background projector, `crm projections follow`) refuses to feed "
            "them: every event would count twice. Run `crm serve --no-projector` (CRM_SERVE_PROJECTOR=0) and no "
            "`crm projections follow` while consumers feed them; to give them back to the follower instead, stop "
            f"the consumers and run `crm projections rebuild {' '.join(fed)}`")


def require_own_schemas(cursor: Cursor, fingerprints: dict[str, str]) -> None:
    """Raise FeederConflict if another version of the code set up any of these read models since (its
    `schema_fingerprint` is not ours: e.g. `crm projections rebuild --online` of a newer release swapped its
    tables in): this process's handlers would write the old version's rows into them."""
    cursor.execute(f"SELECT name, fingerprint FROM projection_schemas WHERE name IN ({_marks(list(fingerprints))[0]})",
                   list(fingerprints))
    if other := sorted(name for name, fingerprint in cursor.fetchall() if fingerprint != fingerprints[name]):
        raise FeederConflict(f"read model(s) {', '.join(other)} were set up by another version of the code or "
                             "with other settings, e.g. CRM_TIME_ZONE (their schema fingerprint is not this "
                             "process's): it refuses to feed them. Run the release and settings that built them "
                             "(restart this process with them)")


@dataclass(frozen=True)
class Failure:
    """An event a read model could not apply: where it is in the log, what it is, and why."""

    name: str
    position: int
    aggregate_id: str
    event_type: str
    reason: str
    at: str  # when it failed (or was passed by), ISO 8601

    def message(self) -> str:
        return (f"read model {self.name} is stopped at log position {self.position}: it cannot apply "
                f"{self.event_type} of aggregate {self.aggregate_id}: {self.reason}")


class ReadModelStopped(RuntimeError):
    """A read model asked for is stopped at an event it cannot apply; its answers would be incomplete."""

    def __init__(self, failures: Sequence[Failure]) -> None:
        self.failures = list(failures)
        names = " ".join(f.name for f in failures)
        super().__init__("; ".join(f.message() for f in failures) + ". Record compensating events, then "
                         f"`crm projections resume {names} [--skip]` (see `crm projections status`)")


@dataclass(frozen=True)
class _Undecodable:
    """In place of an event whose stored state cannot be turned back into a domain event."""

    originator_id: Any
    topic: str
    error: Exception
    originator_version: int | None = None  # what the partitioned projector orders reference events by


class _Unappliable(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message())
        self.failure = failure


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    head: int
    failure: Failure | None = None

    @property
    def lag(self) -> int:
        return self.head - self.position

    @property
    def stopped(self) -> bool:
        return self.failure is not None


def _marks(names: Sequence[str]) -> tuple[str, list[str]]:
    return ", ".join("?" * len(names)), list(names)


def read_positions(store: ReadModelStore, names: Sequence[str]) -> dict[str, int]:
    """The last log position each named read model applied (only reads: queries ask it too)."""
    marks, params = _marks(names)
    return dict(store.query(f"SELECT name, position FROM projection_positions WHERE name IN ({marks})", params))


def read_failures(store: ReadModelStore, names: Sequence[str]) -> dict[str, Failure]:
    """The named read models that are stopped, with the event that stopped each (only reads)."""
    marks, params = _marks(names)
    rows = store.query("SELECT name, position, aggregate_id, event_type, reason, failed_at "
                       f"FROM projection_failures WHERE name IN ({marks})", params)
    return {row[0]: Failure(*row) for row in rows}


def read_statuses(app: CrmApplication, store: ReadModelStore, names: Sequence[str]) -> list[ProjectionStatus]:
    """Position, head and failure of each named read model (only reads: `/health` asks it)."""
    head = app.event_count()
    positions, failures = read_positions(store, names), read_failures(store, names)
    return [ProjectionStatus(name, positions.get(name, 0), head, failures.get(name)) for name in names]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def set_up_tables(store: ReadModelStore, models: Sequence[ReadModel]) -> list[str]:
    """Create missing tables and start new read models at position 0 (so they build over all history);
    returns the names of the read models whose tables were dropped.

    A read model whose tables are not the ones this code defines (a newer version changed them, or
    they predate `projection_schemas`) gets its tables dropped and starts again at 0.
    """
    dropped = []
    with store.transaction() as cursor:
        for statement in (*SCHEMAS.ddl(), *POSITIONS.ddl(), *FAILURES.ddl(), *SKIPS.ddl(), *PARTITION_DDL):
            cursor.execute(statement)
        cursor.execute("SELECT name, fingerprint FROM projection_schemas")
        known = dict(cursor.fetchall())
        cursor.execute("SELECT name FROM projection_positions")
        started = {name for (name,) in cursor.fetchall()}
        for model in models:
            fingerprint = schema_fingerprint(model)
            built_before = model.name in known or model.name in started
            if built_before and known.get(model.name) != fingerprint:
                dropped.append(model.name)
                for table in model.tables:
                    cursor.execute(f"DROP TABLE IF EXISTS {table.name}")
                cursor.execute("UPDATE projection_positions SET position = 0 WHERE name = ?", (model.name,))
                cursor.execute("DELETE FROM projection_failures WHERE name = ?", (model.name,))
            for statement in (s for table in model.tables for s in table.ddl()):
                cursor.execute(statement)
        cursor.executemany("INSERT INTO projection_schemas (name, fingerprint) VALUES (?, ?) ON CONFLICT (name) "
                           "DO UPDATE SET fingerprint = excluded.fingerprint",
                           [(model.name, schema_fingerprint(model)) for model in models])
        start_positions(cursor, [m.name for m in models])
    return dropped


class Projector:
    """Feeds a set of read models from the log, each from its own tracked position."""

    def __init__(self, app: CrmApplication, store: ReadModelStore, models: Sequence[ReadModel],
                 accept: Callable[[Any], bool] = lambda event: True) -> None:
        """`accept` picks the events to handle (a replay up to T accepts business time <= T)."""
        self.app = app
        self.store = store
        self.models = list(models)
        self.accept = accept
        self._handlers = {m.name: m.handlers() for m in self.models}
        self._model_topics = {name: {get_topic(cls) for cls in handlers} for name, handlers in self._handlers.items()}
        self._topics = sorted(set().union(*self._model_topics.values()))
        self._tables = [t for m in self.models for t in m.tables]
        self._fingerprints = {m.name: schema_fingerprint(m) for m in self.models}
        self._carried: tuple[Rows, dict[str, int]] | None = None  # rows after our last batch, our positions then
        self._failures: dict[str, Failure] | None = None  # as the last batch found them
        self.setup()

    def setup(self) -> None:
        """Create missing tables and start new read models at position 0 (see `set_up_tables`)."""
        set_up_tables(self.store, self.models)

    def _names(self) -> tuple[str, list[str]]:
        return _marks([m.name for m in self.models])

    def positions(self) -> dict[str, int]:
        return read_positions(self.store, [m.name for m in self.models])

    def failures(self) -> dict[str, Failure]:
        """The read models of this projector that are stopped, with the event that stopped each."""
        return read_failures(self.store, [m.name for m in self.models])

    def skips(self) -> list[Failure]:
        """The events these read models pass by (an operator's decision, see `resume`), in log order."""
        marks, names = self._names()
        rows = self.store.query("SELECT name, position, aggregate_id, event_type, reason, skipped_at "
                                f"FROM projection_skips WHERE name IN ({marks}) ORDER BY position, name", names)
        return [Failure(*row) for row in rows]

    def status(self) -> list[ProjectionStatus]:
        return read_statuses(self.app, self.store, [m.name for m in self.models])

    def require_running(self, failures: dict[str, Failure] | None = None) -> None:
        """Raise ReadModelStopped if any of these read models is stopped (per `failures`, else the database)."""
        failures = self.failures() if failures is None else failures
        if failures:
            raise ReadModelStopped(list(failures.values()))

    def resume(self, name: str, skip: bool = False) -> Failure | None:
        """Let stopped read model `name` go on: retry the event it stopped at (after a fix in the code), or
        with `skip` pass that one event by, for good (recorded, so rebuilds pass it by too). Returns the
        failure that was cleared (None: it was not stopped)."""
        with self.store.transaction() as cursor:
            cursor.execute("SELECT name, position, aggregate_id, event_type, reason, failed_at "
                           "FROM projection_failures WHERE name = ?", (name,))
            row = cursor.fetchone()
            if row is None:
                return None
            failure = Failure(*row)
            if skip:
                cursor.execute("INSERT INTO projection_skips (name, position, aggregate_id, event_type, reason, "
                               "skipped_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name, position) DO NOTHING",
                               (name, failure.position, failure.aggregate_id, failure.event_type, failure.reason,
                                _now()))
            cursor.execute("DELETE FROM projection_failures WHERE name = ?", (name,))
        log.warning("read model %s resumed at log position %d (%s)", name, failure.position,
                    "event passed by" if skip else "event retried",
                    extra={"component": "projector", "action": "skip" if skip else "resume", "read_model": name,
                           "position": failure.position, "event_type": failure.event_type})
        self._carried = None
        return failure

    def run_batch(self, limit: int = DEFAULT_BATCH) -> int:
        """Process the next batch of events; returns how far the slowest running position moved (0 = caught up,
        or every read model behind is stopped). A read model that cannot apply an event is stopped (see the
        module's docstring) and the batch done again without that event."""
        while True:
            try:
                return self._run_batch(limit)
            except _Unappliable as unappliable:
                self._stop(unappliable.failure)

    def _stop(self, failure: Failure) -> None:
        log.error("%s; the other read models go on", failure.message(),
                  extra={"component": "projector", "action": "stop_read_model", "read_model": failure.name,
                         "position": failure.position, "event_type": failure.event_type,
                         "aggregate_id": failure.aggregate_id})
        self._carried = None  # the failed batch's handlers changed them in memory
        with self.store.transaction() as cursor:
            cursor.execute("INSERT INTO projection_failures (name, position, aggregate_id, event_type, reason, "
                           "failed_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                           (failure.name, failure.position, failure.aggregate_id, failure.event_type, failure.reason,
                            failure.at))

    def _run_batch(self, limit: int) -> int:
        positions, failures = self.positions(), self.failures()
        self._failures = failures
        head = self.app.event_count()
        # A stopped read model still applies the events before the one it stopped at, then waits there.
        ends = {name: min(head, failure.position - 1) for name, failure in failures.items()}
        active = [m for m in self.models if positions[m.name] < ends.get(m.name, head)]
        if not active:
            return 0
        start = min(positions[m.name] for m in active)
        notifications = self.app.recorder.select_notifications(
            start, limit, stop=head, topics=self._topics, inclusive_of_start=False
        )
        end = notifications[-1].id if len(notifications) == limit else head
        ends = {m.name: min(end, ends.get(m.name, end)) for m in active}
        events = list(zip([n.id for n in notifications], self._decode(notifications)))
        skipped = {(f.name, f.position) for f in self.skips()}
        carried = self._take_carried_rows(positions)
        with self.store.transaction() as cursor:
            # positions first (one transaction: where does not matter), then the partition offsets: a partitioned
            # batch holding these rows (FOR SHARE) has committed by now, and none of our rows is held yet
            for model in active:
                if not advance_position(cursor, model.name, positions[model.name], ends[model.name]):
                    raise ProjectionRace(f"read model {model.name} was advanced by another projector")
            require_no_partition_feeder(cursor, [m.name for m in active])
            require_own_schemas(cursor, {m.name: self._fingerprints[m.name] for m in active})
            rows = carried.bind(cursor) if carried else Rows(cursor, self._tables)
            for model in active:
                first, last = positions[model.name], ends[model.name]
                mine = [(n, event) for n, event in events if first < n <= last and (model.name, n) not in skipped]
                self._handle(model, mine, rows)
            rows.flush()
        rows.trim(CARRIED_ROWS)
        self._carried = (rows, {**positions, **ends})
        return max(ends[m.name] for m in active) - start

    def _take_carried_rows(self, positions: dict[str, int]) -> Rows | None:
        """The rows our last batch left, if every position is still where that batch committed it: then
        nobody else has written these tables since, so the rows are what the database holds (a rebuild by
        someone else to that very position holds the same rows: rebuild == incremental). A batch that
        fails drops them, since its handlers may have changed them in memory."""
        carried, self._carried = self._carried, None
        return carried[0] if carried and carried[1] == positions else None

    def _decode(self, notifications: Sequence[Any]) -> list[Any]:
        """The notifications' domain events, personal data left sealed (read models keep the seals and open
        them at query time, so a rebuild decrypts nothing); one that cannot be decoded becomes an
        `_Undecodable` (only the read models that handle its type stop at it)."""
        try:
            return self.app.mapper.to_sealed_events(notifications)
        except transient_errors():
            raise
        except Exception:
            events = []
            for notification in notifications:
                try:
                    events.append(self.app.mapper.to_sealed_event(notification))
                except Exception as error:  # noqa: BLE001 - any reason: it is named in the failure
                    events.append(_Undecodable(notification.originator_id, notification.topic, error,
                                               notification.originator_version))
            return events

    def _handle(self, model: ReadModel, events: list[tuple[int, Any]], rows: Rows) -> None:
        handle_events(model, self._handlers[model.name], self._model_topics[model.name], self.accept, events, rows)

    def catch_up(self, on_progress: Callable[[int, int], None] = lambda done, head: None,
                 limit: int = DEFAULT_BATCH, strict: bool = True) -> int:
        """Process until every read model has reached the head of the log (or the event it is stopped at);
        returns log positions covered. `strict`: raise ReadModelStopped if one is stopped, since its
        answers would be incomplete (the others are caught up first)."""
        handled = 0
        while (count := self.run_batch(limit)) > 0:
            handled += count
            on_progress(min(self.positions().values()), self.app.event_count())
        if strict:
            self.require_running(self._failures)  # as the last batch found them
        return handled

    def rebuild(self, on_progress: Callable[[int, int], None] = lambda done, head: None,
                limit: int = DEFAULT_BATCH) -> int:
        """Empty the read models' tables, go back to position 0 and build them again from the whole log (this
        follower then feeds them: their partition offsets are forgotten, see the module's docstring)."""
        self.reset()
        return self.catch_up(on_progress, limit, strict=False)

    def reset(self) -> None:
        """Empty the read models' tables and forget every feeder's progress (position 0, no partition offsets):
        whichever feeder comes next builds them from the start (`crm projections reset`)."""
        empty = "TRUNCATE" if self.store.kind == "postgresql" else "DELETE FROM"  # TRUNCATE leaves no dead rows
        with self.store.transaction() as cursor:
            for model in self.models:
                for table in model.tables:
                    cursor.execute(f"{empty} {table.name}")
                cursor.execute("UPDATE projection_positions SET position = 0 WHERE name = ?", (model.name,))
                cursor.execute("DELETE FROM projection_failures WHERE name = ?", (model.name,))  # a fresh attempt
                for table in ("projection_offsets", "projection_partition_failures", "projection_references"):
                    cursor.execute(f"DELETE FROM {table} WHERE name = ?", (model.name,))  # skips stay: decisions
        self._carried = None

    def follow(self, stop: threading.Event, poll_seconds: float = 0.2, limit: int = DEFAULT_BATCH) -> None:
        """Catch up, then keep handling new events as they are recorded, until `stop` is set.

        A batch that meets a database outage (PostgreSQL restarting, a dropped connection) rolled back
        whole, so it is retried with growing pauses until the database is back; so is one that another
        projector overtook (ProjectionRace): the next batch starts from the positions as they now are.
        """
        from services.healing import TRANSIENT_DATABASE_ERRORS, follow_until_stopped

        follow_until_stopped("projections follow", lambda: self.run_batch(limit), stop, poll_seconds,
                             (*TRANSIENT_DATABASE_ERRORS, ProjectionRace))


def _type_name(event: Any) -> str:
    return type(event).__qualname__


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def handle_events(model: ReadModel, handlers: dict[type, Callable[[Any, Rows], None]], topics: set[str],
                  accept: Callable[[Any], bool], events: list[tuple[int, Any]], rows: Rows) -> None:
    """Apply (position, event) pairs to `model` (its `handlers`, the event `topics` it handles); _Unappliable
    names the first one a handler cannot apply. Shared by the log follower and the partitioned projector."""
    for n, event in events:
        if isinstance(event, _Undecodable) and event.topic in topics:
            raise _Unappliable(Failure(model.name, n, str(event.originator_id), event.topic.rsplit(":")[-1],
                                       f"the stored event cannot be decoded: {_reason(event.error)}", _now()))
    relevant = [(n, e) for n, e in events if type(e) in handlers and accept(e)]  # none is _Undecodable
    try:
        model.prefetch([e for _, e in relevant], rows)
    except transient_errors():
        raise
    except Exception as error:
        for n, event in relevant:  # which event is it? (prefetching is only reading)
            _attempt(model, n, event, lambda e=event: model.prefetch([e], rows))
        raise _Unappliable(Failure(model.name, relevant[0][0], str(relevant[0][1].originator_id),
                                   _type_name(relevant[0][1]), _reason(error), _now())) from error
    for n, event in relevant:
        _attempt(model, n, event, lambda e=event: handlers[type(e)](e, rows))
    if relevant:  # work a model does once per batch (segments); a failure there names the batch's last event
        _attempt(model, relevant[-1][0], relevant[-1][1], lambda: model.finish(rows))


def _attempt(model: ReadModel, position: int, event: Any, work: Callable[[], None]) -> None:
    try:
        work()
    except transient_errors():
        raise
    except Exception as error:
        raise _Unappliable(Failure(model.name, position, str(event.originator_id), _type_name(event),
                                   _reason(error), _now())) from error
