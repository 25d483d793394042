"""A segment process that dies by SIGKILL at one of two points: right after it recorded its first changes in the
log (before the relay could publish them and before its own read model saw them: `after-record`), or right after
it found changes due and before it recorded them (`before-record`).

`killed(point, url)` runs it in a forked child (no interpreter to start: ≈ 0.1 s rather than 3–6 s on a loaded
machine) and waits for its death — the faults `crm segments run` meets when the machine or the OOM killer stops it
between finding, recording and publishing."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from typing import Any

from services.application import CrmApplication
from services.segment_process import SegmentChangeProcess, run_until_stopped
from services.settings import database_from_url

WRITE, SAVE = CrmApplication._write, SegmentChangeProcess._save


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _write_then_die(app: CrmApplication, *args: Any, **kwargs: Any) -> Any:
    WRITE(app, *args, **kwargs)
    _die()


def _die_before_saving(process: SegmentChangeProcess, changes: list[Any], now: Any) -> int:
    if changes:
        _die()
    return SAVE(process, changes, now)


def _run_and_die(point: str, url: str) -> None:
    """In the child: its own application (own connections), patched to die at `point`."""
    crm = CrmApplication(database_from_url(url))
    if point == "after-record":
        CrmApplication._write = _write_then_die  # type: ignore[method-assign]
    else:
        SegmentChangeProcess._save = _die_before_saving  # type: ignore[method-assign]
    run_until_stopped(crm, threading.Event(), poll=0.05)


def killed(point: str, url: str, timeout: float = 60) -> None:
    """Run a segment process on `url` that dies at `point` (after-record, before-record); return once it died
    by SIGKILL (AssertionError if it did not within `timeout` seconds)."""
    child = multiprocessing.get_context("fork").Process(target=_run_and_die, args=(point, url), daemon=True)
    child.start()
    child.join(timeout)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == -signal.SIGKILL, f"the process did not die at {point}: exit {child.exitcode}"
