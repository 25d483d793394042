"""A reminder process that dies by SIGKILL right after its first reminder is saved in the log, before the relay
could publish it and before its own read model has seen it.

`python -m tests.support.reminders_die_after_emit DATABASE_URL` — the fault `crm reminders run` meets when the
machine or the OOM killer stops it between emitting and publishing."""

from __future__ import annotations

import os
import signal
import sys
import threading

from services.application import CrmApplication
from services.reminder_process import run_until_stopped
from services.settings import database_from_url


def _save_then_die(app: CrmApplication, *args: object, **kwargs: object) -> None:
    WRITE(app, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)


WRITE = CrmApplication._write

if __name__ == "__main__":
    crm = CrmApplication(database_from_url(sys.argv[1]))
    CrmApplication._write = _save_then_die  # type: ignore[method-assign]
    run_until_stopped(crm, threading.Event(), poll=0.05)
