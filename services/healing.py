"""How the unattended processes (`crm relay`, `crm projections follow`, `crm inbound`) ride out faults.

A PostgreSQL restart or a broker outage is transient: the step that met it is retried with growing pauses
(0.5 s doubling to 30 s; a restart takes a few seconds, so the first retries find it back), with a log line
at each retry and one when the fault has passed. Nothing is skipped: each step keeps its place (a position
or a Kafka offset) in the database or the broker, and moves it only after its work is committed. Any other
error is a bug or bad data, not weather: it is logged and stops the process, so that it is seen.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import TypeVar

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from psycopg_pool import PoolTimeout
from pythonjsonlogger.json import JsonFormatter

from domain.personal_data import PREFIX
from services.settings import SettingsError

log = logging.getLogger(__name__)
T = TypeVar("T")

# The database is down or unreachable (a restart, a network cut), or a stale connection met that.
TRANSIENT_DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
FIRST_PAUSE = 0.5  # seconds
LONGEST_PAUSE = 30.0  # seconds: a long outage costs one attempt (and one log line) per 30 s


SEALED_VALUE = re.compile(rf"({re.escape(PREFIX)}[0-9a-f-]{{36}}:)[A-Za-z0-9_=-]+")
STANDARD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
LOG_FORMAT_VARIABLE = "CRM_LOG_FORMAT"
LOG_FIELDS = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to_stderr() -> None:
    """Log lines with time, level and source on stderr, for a process that runs unattended: as text, or
    with CRM_LOG_FORMAT=json one JSON object per line (python-json-logger) for a log collector."""
    kind = os.environ.get(LOG_FORMAT_VARIABLE, "text")
    if kind not in ("text", "json"):
        raise SettingsError(f"{LOG_FORMAT_VARIABLE} must be 'text' or 'json', not {kind!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(LOG_FIELDS.replace(": ", " "), json_ensure_ascii=False) if kind == "json"
                         else logging.Formatter(LOG_FIELDS))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python says much at INFO
    for handler in logging.getLogger().handlers:
        handler.addFilter(Throttled("kafka"))
        handler.addFilter(SealsHidden())


class SealsHidden(logging.Filter):
    """No sealed personal data in a log line, whatever an error message quoted: each seal's ciphertext is
    cut (its record id stays, to find the record). The log lines themselves name ids, counts, positions and
    reasons, never a personal field (tests/unit/services/test_unattended_logging.py)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if PREFIX in message:
            record.msg, record.args = hide_seals(message), ()
        for name, value in vars(record).items():
            if name not in STANDARD_FIELDS and isinstance(value, str) and PREFIX in value:
                setattr(record, name, hide_seals(value))
        return True


def hide_seals(text: str) -> str:
    return SEALED_VALUE.sub(r"\1…", text)


class Throttled(logging.Filter):
    """At most one line per `seconds` for each message of the `prefix` loggers: while the broker is away,
    kafka-python reports every reconnection attempt (≈ 5 lines a second); one a minute says as much."""

    def __init__(self, prefix: str, seconds: float = 60.0) -> None:
        super().__init__()
        self.prefix, self.seconds = prefix, seconds
        self.last: dict[tuple[str, object], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefix):
            return True
        key = (record.name, record.msg)
        if record.created - self.last.get(key, float("-inf")) < self.seconds:
            return False
        self.last[key] = record.created
        return True


class Backoff:
    """Growing pauses between attempts; back to the first after a success."""

    def __init__(self, first: float = FIRST_PAUSE, longest: float = LONGEST_PAUSE) -> None:
        self.first, self.longest = first, longest
        self.next = first
        self.failures = 0

    def pause(self) -> float:
        """The pause to take now (and double the next one)."""
        pause, self.next = self.next, min(self.next * 2, self.longest)
        self.failures += 1
        return pause

    def reset(self) -> int:
        """After a success: returns how many attempts had failed in a row."""
        failures, self.failures, self.next = self.failures, 0, self.first
        return failures


def follow_until_stopped(name: str, step: Callable[[], int], stop: threading.Event, idle_seconds: float,
                         transient: tuple[type[Exception], ...], backoff: Backoff | None = None) -> None:
    """Run `step` (it returns how much it did; 0 = nothing to do, then wait `idle_seconds`) until `stop` is
    set. A `transient` error is logged and the step retried after a pause; any other error propagates."""
    backoff = backoff or Backoff()
    log.info("%s: started", name, extra={"component": name, "action": "start"})
    while not stop.is_set():
        try:
            done = step()
        except transient as error:
            _retry_later(name, error, backoff, stop)
            continue
        except Exception as error:
            log.exception("%s: stopped by an error that retrying cannot mend", name,
                          extra={"component": name, "action": "stop", "cause": type(error).__name__})
            raise
        if failures := backoff.reset():
            log.warning("%s: recovered after %d failed attempts", name, failures,
                        extra={"component": name, "action": "recovered", "attempts": failures})
        if not done:
            stop.wait(idle_seconds)
    log.info("%s: stopped", name, extra={"component": name, "action": "stop", "cause": None})


def _retry_later(name: str, error: Exception, backoff: Backoff, stop: threading.Event, doing: str = "") -> None:
    """Log the retry with its cause (one line per attempt), then pause."""
    pause = backoff.pause()
    log.warning("%s%s: %s: %s; retrying in %.1f s (attempt %d)", name, doing, type(error).__name__,
                str(error).strip() or "no detail", pause, backoff.failures,
                extra={"component": name, "action": "retry", "cause": type(error).__name__,
                       "attempt": backoff.failures, "pause_seconds": pause})
    stop.wait(pause)


def start_when_ready(name: str, start: Callable[[ExitStack], T], stack: ExitStack, stop: threading.Event,
                     transient: tuple[type[Exception], ...]) -> T | None:
    """`start(attempt)` (open connections, create tables, entering what must be closed into `attempt`),
    retried with growing pauses while the database or the broker is away; what the successful attempt
    opened is closed with `stack`. None if `stop` was set first."""
    backoff = Backoff()
    while not stop.is_set():
        try:
            with ExitStack() as attempt:  # a failed attempt closes what it had opened
                started = start(attempt)
                stack.enter_context(attempt.pop_all())
                return started
        except transient as error:
            _retry_later(name, error, backoff, stop, ": cannot start yet")
    return None
