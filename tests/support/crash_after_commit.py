"""An API server process that dies by SIGKILL right after its first command commits, before it answers.

`python -m tests.support.crash_after_commit DATABASE_URL PORT TOKENS_FILE` — the fault a worker meets when the
machine or the OOM killer stops it between saving a command and sending the response.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import uvicorn

from gateways.http.app import create_app
from gateways.http.tokens import TokenRegistry
from services.application import CrmApplication
from services.settings import database_from_url


def _commit_then_die(view: CrmApplication, *args: object, **kwargs: object) -> None:
    COMMIT(view, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)


def _save_then_die(app: CrmApplication, *args: object, **kwargs: object) -> None:
    WRITE(app, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)


COMMIT, WRITE = CrmApplication.commit, CrmApplication._write

if __name__ == "__main__":
    url, port, tokens = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    api = create_app(database_from_url(url), TokenRegistry.from_file(tokens))
    CrmApplication.commit = _commit_then_die  # type: ignore[method-assign]
    CrmApplication._write = _save_then_die  # type: ignore[method-assign]  # also without a key
    uvicorn.run(api, host="127.0.0.1", port=port, log_level="warning")
