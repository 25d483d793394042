"""The partitions' ends as a query's `X-Read-Model-Lag` needs them, read in the background.

Over shards the read models are fed by the consumer group, per Kafka partition, and how stale an answer is
means how many records each of its read models has still to apply in each partition: the topic's end offsets
minus the offsets the read store keeps (services.projection_runtime.partition_freshness). The end offsets are
Kafka's, and asking the broker on every query would add its round trips to every answer, which reads only
PostgreSQL (measured on 2 busy cores for a 64-partition topic: 185 ms median with a new client, 20 ms with
one kept open; up to the request timeout with the broker away). So one daemon thread per server process reads
them every second over one kept client and a query takes the last reading: the lag it reports is then at most
one second old — a lower bound, short by what was published meanwhile (at most ≈ 1 s of writes; the consumers
apply those too within that second when they keep up).

A reading older than `max_age` (the broker away, a reading stuck) is not used: the answer then carries no
lag header rather than a stale one, and the queries go on. One reading error is logged per outage, not per
second. A hand-written loop rather than a scheduler library: it is one `Event.wait` loop, and APScheduler or
the like would bring a dependency for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

EVERY = 1.0  # seconds between readings: one metadata-cached ListOffsets request a second per server process
MAX_AGE = 5.0  # seconds: a reading older than five missed refreshes is no longer a lag worth reporting
log = logging.getLogger(__name__)


class PartitionEnds:
    """Call it for the last reading of `read()` (partition → end offset, the offset the next record will get),
    or None when there is none younger than `max_age`. `start()` runs the readings in a daemon thread."""

    def __init__(self, read: Callable[[], Mapping[int, int]], every: float = EVERY, max_age: float = MAX_AGE,
                 clock: Callable[[], float] = time.monotonic, close: Callable[[], None] = lambda: None) -> None:
        self._read, self._close, self.every, self.max_age, self._clock = read, close, every, max_age, clock
        self._reading: tuple[Mapping[int, int] | None, float] = (None, float("-inf"))  # swapped whole
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self) -> Mapping[int, int] | None:
        ends, read_at = self._reading
        return ends if self._clock() - read_at <= self.max_age else None

    def refresh(self) -> None:
        """One reading; a failure keeps the last one (which ages out) and is logged once until it succeeds."""
        try:
            ends = dict(self._read())
        except Exception as error:  # noqa: BLE001 - any failure only leaves the lag unknown, the queries go on
            if not self._failing:
                log.warning("partition ends unreadable (%s): answers carry no X-Read-Model-Lag until it is back",
                            error, extra={"component": "partition ends", "action": "unreadable"})
            self._failing = True
            return
        if self._failing:
            log.info("partition ends readable again", extra={"component": "partition ends", "action": "back"})
        self._reading, self._failing = (ends, self._clock()), False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="partition-ends", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the readings; a reading stuck on an unreachable broker is left to die with the process."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.every)
