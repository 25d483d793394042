"""How fresh a query's answer is, found out without writing a row.

Queries never catch read models up: that is the projector's job alone (`crm projections follow`, or the
thread `crm serve` runs), so a query never holds a write lock, never races a projector, and a GET is safe to
repeat. An answer may therefore lag the log; it says by how much: `position` (the last log position every
read model it reads from has applied) against `head` (the log's last position). A client that has just
written waits for its own write by position (read-your-writes): bounded, since a stopped or absent
projector must not hold requests for ever.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.application import CrmApplication
from services.projection_runtime.projector import Failure, ReadModelStopped, read_failures
from services.projection_runtime.schema_change import require_current_schemas
from services.storage.read_model_store import ReadModelStore

LONGEST_WAIT = 5.0  # seconds: a follower applies a command's events within ≈ 0.1 s; 5 s means it is not running
POLL = 0.05  # seconds between looks at the positions while waiting (one indexed read each)


@dataclass(frozen=True)
class Freshness:
    """Where the read models behind an answer stand: `position` applied, of the log's `head`."""

    position: int
    head: int

    @property
    def lag(self) -> int:
        return max(self.head - self.position, 0)

    def headers(self) -> dict[str, str]:
        """The lag too, as over shards (partition_freshness), so that a client reads one header either way."""
        return {"X-Read-Model-Position": str(self.position), "X-Log-Position": str(self.head),
                "X-Read-Model-Lag": str(self.lag)}


class NotYetApplied(RuntimeError):
    """The read models did not apply the position asked for within the wait."""

    def __init__(self, wanted: int, found: Freshness, waited: float) -> None:
        self.wanted, self.found = wanted, found
        super().__init__(f"the read models have applied the log up to position {found.position}, not yet "
                         f"{wanted} (waited {waited:.1f} s); is a projector running? Try again shortly")


class BeyondHead(ValueError):
    """A position the log does not have: no write has returned it."""

    def __init__(self, wanted: int, found: Freshness) -> None:
        self.wanted, self.found = wanted, found
        super().__init__(f"the log ends at position {found.head}; there is no position {wanted} to wait for")


class ReadModelNotBuilt(RuntimeError):
    """No projector has ever set up a read model asked for: there is nothing to read yet."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        super().__init__(f"read model(s) {', '.join(names)} not built yet: run `crm projections catch-up` "
                         "(or keep `crm projections follow` running)")


def freshness(app: CrmApplication, store: ReadModelStore, names: Sequence[str]) -> Freshness:
    """The freshness of an answer from `names` (none: an answer from the log itself, always fresh).
    Raises ReadModelStopped if one of them is stopped: its answers would be incomplete, not just late;
    ReadModelNotBuilt if one was never set up; ReadModelRebuilding if one's tables are another version's
    (`crm serve` is building this version online: schema_change)."""
    if not names:
        head = app.event_count()
        return Freshness(head, head)
    failures, positions, fingerprints = _read_state(store, names)
    if failures:
        raise ReadModelStopped(list(failures.values()))
    head = app.event_count()  # after the positions: position <= head even while a projector commits
    if missing := [name for name in names if name not in positions]:
        raise ReadModelNotBuilt(missing)
    require_current_schemas(store, fingerprints, head)
    return Freshness(min(positions[name] for name in names), head)


def _read_state(store: ReadModelStore, names: Sequence[str]
                ) -> tuple[dict[str, Failure], dict[str, int], dict[str, str | None]]:
    """Failures, positions and stored schema fingerprints: two indexed reads, as before the fingerprints (the
    failures table exists only where `set_up_tables` ran, which makes projection_schemas too)."""
    try:
        failures = read_failures(store, names)
        rows = store.query("SELECT p.name, p.position, s.fingerprint FROM projection_positions p LEFT JOIN "
                           "projection_schemas s ON s.name = p.name "
                           f"WHERE p.name IN ({', '.join('?' * len(names))})", list(names))
        return failures, {name: position for name, position, _ in rows}, {name: print_ for name, _, print_ in rows}
    except Exception:
        if _positions_table_exists(store):
            raise  # not a missing table: the database's own error (an outage is retried by the client)
        raise ReadModelNotBuilt(names) from None


def _positions_table_exists(store: ReadModelStore) -> bool:
    """Whether any projector ever ran on this database (a catalog query, only after a failed read)."""
    if store.kind == "postgresql":
        return bool(store.query("SELECT to_regclass('projection_failures') IS NOT NULL")[0][0])
    return bool(store.query("SELECT count(*) FROM sqlite_master WHERE name = 'projection_failures'")[0][0])


def wait_for_position(app: CrmApplication, store: ReadModelStore, names: Sequence[str], wanted: int,
                      longest: float | None = None, sleep: Callable[[float], None] = time.sleep) -> Freshness:
    """The freshness once `names` have applied log position `wanted` (a client's own write); NotYetApplied
    after `longest` seconds (default LONGEST_WAIT), BeyondHead at once for a position the log does not have."""
    longest = LONGEST_WAIT if longest is None else longest
    started = time.monotonic()
    while True:
        found = freshness(app, store, names)
        if found.position >= wanted:
            return found
        if wanted > found.head:
            raise BeyondHead(wanted, found)
        waited = time.monotonic() - started
        if waited >= longest:
            raise NotYetApplied(wanted, found, waited)
        sleep(POLL)
