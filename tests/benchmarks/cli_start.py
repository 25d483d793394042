"""How long `crm funnel --json` takes from the shell, against the interpreter's own start (`python -c pass`).

Issue 12: every `crm` call took 2.5–5 s, which makes a loop per agent or per month slow; the target is
≤ 0.5 s for a query. Measured as a user meets it: a fresh process per run on an SQLite log whose read models
are built (the first lines of the run's history, imported with `crm import`'s code path and caught up),
the median of N runs after one warm-up run (which writes the bytecode caches a real install has, so
PYTHONDONTWRITEBYTECODE is dropped from the children's environment). A query's answer comes from the
funnel's tallies, so the log's size hardly matters: what is measured is the start. `details` also has the
children's CPU time (user + system, from wait4), which a busy machine inflates less than wall time.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

from services.application import CrmApplication
from services.history.importer import import_history
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.benchmarks.harness import REPO_ROOT, Bench, Metric, log, ratio
from tests.benchmarks.history import head_of

TARGET_SECONDS = 0.5
LOG_EVENTS = 20_000  # the first lines of the history: enough for every stage, quick to build on SQLite
RUNS, SMOKE_RUNS = 15, 3
QUERY = ("-m", "gateways.cli.main", "funnel", "--json")
BASELINE = ("-c", "pass")


def _built_log(bench: Bench) -> tuple[str, int]:
    """An SQLite log of the history's first lines with every read model caught up; its URL and events."""
    lines = bench.workdir / "cli-start.jsonl"
    head_of(bench.history, min(1.0, LOG_EVENTS / bench.history.events), lines)
    url = f"sqlite:///{bench.workdir / 'cli-start.sqlite3'}"
    app = CrmApplication(database_from_url(url))
    store = ReadModelStore(app.database)
    try:
        events = import_history(app, lines, jobs=1)
        projector_for(app, store).catch_up()
    finally:
        store.close()
        app.close()
    return url, events


def timed_run(arguments: tuple[str, ...], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one `python ARGUMENTS`; raises if it fails."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, *arguments], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                                 stderr=errors)
        _, status, usage = os.wait4(child.pid, 0)  # the child's own CPU time, not the harness's
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
        if child.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"python {' '.join(arguments)} exited {child.returncode}: "
                               f"{errors.read().decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def median_run(arguments: tuple[str, ...], env: dict[str, str], runs: int) -> tuple[float, float]:
    timed_run(arguments, env)  # warm-up: bytecode caches, the page cache
    walls, cpus = zip(*(timed_run(arguments, env) for _ in range(runs)))
    return statistics.median(walls), statistics.median(cpus)


def measure(bench: Bench) -> list[Metric]:
    url, events = _built_log(bench)
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env.update(CRM_DATABASE_URL=url, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                                               env.get("PYTHONPATH")])))
    runs = SMOKE_RUNS if bench.plan.smoke else RUNS
    log(f"timing `crm funnel --json` and `python -c pass`, {runs} runs each, on an SQLite log of {events:,} events")
    wall, cpu = median_run(QUERY, env, runs)
    bare_wall, bare_cpu = median_run(BASELINE, env, runs)
    return [Metric(
        "cli_start", round(wall, 3), "s (median wall time)",
        f"python -c pass: the interpreter's start (median of {runs})", round(bare_wall, 3), ratio(wall, bare_wall),
        f"≤ {TARGET_SECONDS:g} s", wall <= TARGET_SECONDS,
        {"command": "python " + " ".join(QUERY), "runs": runs, "events": events, "database": "SQLite, read models built",
         "cpu_seconds": round(cpu, 3), "baseline_cpu_seconds": round(bare_cpu, 3)},
    )]
