"""The benchmark's history: the seeded demo (services.demo.sample_data.DemoHistory) exported to JSON Lines."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import orjson

from services.application import CrmApplication
from services.demo.sample_data import DemoHistory, DemoSettings
from services.history.exporter import export_history
from services.settings import database_from_url

EVENTS_PER_LEAD = 8.0  # measured: 294,000 events from 36,600 leads over 730 days (82,000 per 10,000 at small scale)
DAYS = 730
SEED = 7


@dataclass(frozen=True)
class History:
    path: Path
    events: int
    leads: int
    start: datetime  # business time of the first and last day of the history
    end: datetime
    generate_seconds: float
    export_seconds: float


def leads_for(events: int) -> int:
    return max(20, round(events / EVENTS_PER_LEAD))


def make_history(events: int, workdir: Path) -> History:
    """Generate about `events` events into a scratch SQLite log and export them to `history.jsonl`."""
    settings = DemoSettings(seed=SEED, leads=leads_for(events), days=DAYS)
    app = CrmApplication(database_from_url(f"sqlite:///{workdir / 'generated.db'}"))
    started = time.perf_counter()
    app.ensure_default_pipelines()
    DemoHistory(app, settings).run()
    generated = time.perf_counter()
    path = workdir / "history.jsonl"
    with path.open("wb") as out:
        count = export_history(app, out)
    exported = time.perf_counter()
    app.close()
    for leftover in workdir.glob("generated.db*"):
        leftover.unlink()
    return History(path, count, settings.leads, settings.start, settings.until, generated - started,
                   exported - generated)


CACHE_VARIABLE = "CRM_BENCH_HISTORY_DIR"


def cached_history(events: int, workdir: Path) -> History:
    """`make_history`, or the history a run made before for the same number of events if the directory
    `CRM_BENCH_HISTORY_DIR` names keeps one (the generator is seeded: the same file; at `--scale 1.0` it saves
    the 4–20 minutes of generating it); a history made here is kept there for the next run."""
    cache = os.environ.get(CACHE_VARIABLE)
    if not cache:
        return make_history(events, workdir)
    kept, about = Path(cache) / f"history-{events}.jsonl", Path(cache) / f"history-{events}.json"
    if kept.exists() and about.exists():
        fields = orjson.loads(about.read_bytes())
        path = workdir / "history.jsonl"
        shutil.copyfile(kept, path)
        return History(path, fields["events"], fields["leads"], datetime.fromisoformat(fields["start"]),
                       datetime.fromisoformat(fields["end"]), fields["generate_seconds"], fields["export_seconds"])
    history = make_history(events, workdir)
    Path(cache).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(history.path, kept)
    about.write_bytes(orjson.dumps({**asdict(history), "path": str(kept)}))
    return history


REFERENCES = ("customer_id", "lead_id", "campaign_id", "deal_id")


def head_of(history: History, fraction: float, path: Path) -> int:
    """Write the first `fraction` of the history's lines to `path`, and on until no line names an aggregate
    created later: one save records its aggregates one after the other (a lead's Converted before its
    customer's Registered, a campaign's response before the lead it names), and `crm import` refuses a
    history whose references never resolve."""
    wanted, count, created, waiting = max(1, round(history.events * fraction)), 0, set(), set()
    with history.path.open("rb") as source, path.open("wb") as out:
        for count, line in enumerate(source, 1):
            if count > wanted and not waiting:
                return count - 1
            out.write(line)
            record = orjson.loads(line)
            if record["version"] == 1:
                created.add(record["subject"])
                waiting.discard(record["subject"])
            waiting |= {record["data"][name] for name in REFERENCES if record["data"].get(name)} - created
    return count
