"""Measured operations in a process of their own, so that peak RSS belongs to that one operation.

    python -m tests.benchmarks.child ingest URL FILE BATCH   # `crm import`'s code path
    python -m tests.benchmarks.child rebuild URL             # rebuild of every read model
    python -m tests.benchmarks.child serve URL TOKENS PORT   # the HTTP API under uvicorn

`ingest` and `rebuild` print one JSON object: events, seconds, start_rss_mb, peak_rss_mb.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import orjson

from services.application import CrmApplication
from services.bulk_import import import_history
from services.read_models import projector_for
from services.readstore import ReadStore
from services.settings import database_from_url


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB: VmHWM (ru_maxrss would count the parent's
    peak from before the exec)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def ingest(url: str, file: str, batch: str) -> dict[str, Any]:
    app = CrmApplication(database_from_url(url))
    start_rss, started = rss_mb(), time.perf_counter()
    events = import_history(app, Path(file), int(batch))
    return {"events": events, "seconds": time.perf_counter() - started, "start_rss_mb": start_rss,
            "peak_rss_mb": rss_mb()}


def rebuild(url: str) -> dict[str, Any]:
    app = CrmApplication(database_from_url(url))
    store = ReadStore(app.database)
    projector = projector_for(app, store)
    start_rss, started = rss_mb(), time.perf_counter()
    projector.rebuild()
    return {"events": app.event_count(), "seconds": time.perf_counter() - started, "start_rss_mb": start_rss,
            "peak_rss_mb": rss_mb()}


def serve(url: str, tokens: str, port: str) -> None:
    import uvicorn

    from gateways.http.app import create_app
    from gateways.http.tokens import TokenRegistry

    api = create_app(database_from_url(url), TokenRegistry.from_file(tokens))
    uvicorn.run(api, host="127.0.0.1", port=int(port), log_level="warning")


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    if command == "serve":
        serve(*arguments)
    else:
        result = {"ingest": ingest, "rebuild": rebuild}[command](*arguments)
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
