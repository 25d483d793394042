"""What a CSV import read, would write, refused and skipped: `--dry-run`'s report, also printed after a run.

Per file the rows read and the rows of records the log already holds unchanged; how many records of the log
are unchanged and how many extended (new rows of a record already imported); per event type the events; each refused row
with its file, line, column and reason; the business-time range of the events; per pipeline how many deals
reached each stage (opened in it or moved to it, won, lost), so a funnel's shape can be checked before
anything is written. `--rejects FILE` writes the refused rows back as CSV with their original columns plus
`line` and `reason`, so the user can fix them and import that file with the same mapping.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from services.event_envelope import event_type
from services.history.csv_import.import_session import Refused

MAX_PRINTED = 50  # refused rows printed in the text report; the JSON report and --rejects hold all of them
REACHING = {"crm.Deal.Opened": "stage", "crm.Deal.StageChanged": "to_stage", "crm.Deal.Reopened": "stage"}


@dataclass
class ImportReport:
    mapping: str
    rows_read: dict[str, int]
    skipped: dict[str, int]
    events: dict[str, int]
    refused: list[Refused]
    first: datetime | None
    last: datetime | None
    stages: dict[str, dict[str, int]]
    dry_run: bool
    written: int = 0
    rejects: list[str] = field(default_factory=list)
    unchanged: int = 0  # records already in the log, the file giving the events it holds
    extended: int = 0  # records already in the log, the file adding events after those it holds

    def as_dict(self) -> dict[str, Any]:
        return {
            "mapping": self.mapping, "dry_run": self.dry_run, "rows_read": self.rows_read,
            "rows_already_imported": self.skipped, "events": self.events, "events_total": sum(self.events.values()),
            "events_written": self.written, "records_unchanged": self.unchanged, "records_extended": self.extended,
            "refused": [{"file": r.file, "line": r.line, "column": r.column, "reason": r.reason} for r in self.refused],
            "date_range": None if self.first is None else {"first": _iso(self.first), "last": _iso(self.last)},
            "stages": self.stages, "rejects_files": self.rejects,
        }

    def lines(self) -> list[str]:
        out = [f"Mapping {self.mapping}" + (" (dry run: nothing written)" if self.dry_run else "")]
        out += [f"  {name}: {count:,} rows read" + (f", {self.skipped[name]:,} already imported"
                                                    if self.skipped.get(name) else "")
                for name, count in self.rows_read.items()]
        if self.unchanged or self.extended:
            out.append(f"Records already in the log: {self.unchanged:,} records unchanged, {self.extended:,} extended")
        verb = "would be written" if self.dry_run else "to write"
        out.append(f"Events {verb}: {sum(self.events.values()):,}")
        out += [f"  {name}: {count:,}" for name, count in sorted(self.events.items())]
        if self.first is not None:
            out.append(f"Business time: {_iso(self.first)} … {_iso(self.last)}")
        for pipeline, counts in self.stages.items():
            out.append(f"Deals per stage in pipeline {pipeline}: "
                       + ", ".join(f"{stage} {count:,}" for stage, count in counts.items()))
        if self.refused:
            out.append(f"Refused rows: {len(self.refused):,}")
            out += [f"  {r.file} line {r.line}" + (f", column {r.column}" if r.column else "") + f": {r.reason}"
                    for r in self.refused[:MAX_PRINTED]]
            if len(self.refused) > MAX_PRINTED:
                out.append(f"  … and {len(self.refused) - MAX_PRINTED:,} more (see --json or --rejects)")
        return out


def _iso(instant: datetime | None) -> str:
    return "" if instant is None else instant.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def event_counts(events: Iterable[Any]) -> dict[str, int]:
    return dict(sorted(Counter(event_type(e) for e in events).items()))


def date_range(events: list[Any]) -> tuple[datetime | None, datetime | None]:
    """First and last business time of the records' events (pipeline definitions are not business)."""
    instants = [e.occurred_at for e in events if not event_type(e).startswith("crm.Pipeline.")]
    return (min(instants), max(instants)) if instants else (None, None)


def stage_counts(events: list[Any], stage_order: dict[str, list[str]], pipeline_of: dict[Any, str] | None = None
                 ) -> dict[str, dict[str, int]]:
    """Per pipeline, how many deals reached each stage (each deal counted once per stage), won and lost;
    `pipeline_of` gives the pipeline of deals opened before (in the log)."""
    pipeline_of = dict(pipeline_of or {})
    reached: dict[str, dict[str, set[Any]]] = {}
    for event in events:
        name = event_type(event)
        if name == "crm.Deal.Opened":
            pipeline_of[event.originator_id] = event.pipeline
        stage = getattr(event, REACHING[name]) if name in REACHING else \
            {"crm.Deal.Won": "won", "crm.Deal.Lost": "lost"}.get(name)
        if stage is not None:
            pipeline = pipeline_of[event.originator_id]
            reached.setdefault(pipeline, {}).setdefault(stage, set()).add(event.originator_id)
    return {pipeline: {stage: len(by_stage[stage]) for stage in [*stage_order.get(pipeline, []), "won", "lost"]
                       if stage in by_stage} for pipeline, by_stage in reached.items()}


def write_rejects(path: Path, refused: list[Refused]) -> list[str]:
    """The refused rows as CSV (original columns + line + reason); one file per source file, named after it
    when rows of several files were refused. Returns the files written."""
    by_file: dict[str, list[Refused]] = {}
    for refusal in refused:
        by_file.setdefault(refusal.file, []).append(refusal)
    written = []
    for name, rows in by_file.items():
        target = path if len(by_file) == 1 else path.with_name(f"{path.stem}-{Path(name).stem}{path.suffix or '.csv'}")
        columns = list(dict.fromkeys(column for r in rows for column in r.values))
        with target.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow([*columns, "line", "reason"])
            for r in sorted(rows, key=lambda r: r.line):
                reason = f"{r.column}: {r.reason}" if r.column else r.reason
                writer.writerow([*(r.values.get(column, "") for column in columns), r.line, reason])
        written.append(str(target))
    return written
