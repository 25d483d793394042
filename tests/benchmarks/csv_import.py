"""CSV import (`crm import MAPPING.toml`) of a HubSpot-shaped export vs the raw import of the same events.

Issue 12: teams bring their history in as their CRM exports it. A synthetic HubSpot export
(tests/benchmarks/hubspot_export.py: 100,000 opportunities at `--scale 1.0`, one row each with its
per-stage entered dates, plus a company per ten deals) is imported into an empty PostgreSQL log by
`run_csv_import` (the CLI's function), in a child process. The events it wrote are then exported (`crm
export`'s code path) and imported into a second empty log by `import_history` with `crm import FILE.jsonl`'s
defaults, in a child process too: what the same events cost without the CSV layer (reading the rows, the
domain's methods per record, writing the history lines), so the ratio is the CSV layer's price. Both
`run_csv_import` steps are timed apart (plan: read and build every record in memory; write: the history lines
through `import_history`, one transaction), with the peak memory of each child.
"""

from __future__ import annotations

from typing import Any

from services.application import CrmApplication
from services.history.exporter import export_history
from services.settings import database_from_url
from tests.benchmarks.harness import Bench, Metric, log, ratio, run_child
from tests.benchmarks.hubspot_export import Export, write_export

FULL_SCALE_OPPORTUNITIES = 100_000
MIN_OPPORTUNITIES = 200


def _export_log(bench: Bench, url: str) -> tuple[str, int]:
    """The log at `url` as JSON Lines in the run's folder: its path and line count."""
    path = bench.workdir / "csv-imported.jsonl"
    app = CrmApplication(database_from_url(url))
    try:
        with path.open("wb") as out:
            return str(path), export_history(app, out)
    finally:
        app.close()


def _details(export: Export, csv: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    return {"opportunities": export.opportunities, "companies": export.companies, "rows": csv["rows"],
            "file_mib": round(export.size / (1 << 20), 1),
            "events": csv["events"], "events_by_type": csv["by_type"], "seconds": round(csv["seconds"], 2),
            "plan_seconds": round(csv["plan_seconds"], 2), "write_seconds": round(csv["write_seconds"], 2),
            "raw_seconds": round(raw["seconds"], 2), "raw_jobs": raw["jobs"],
            "plan_peak_rss_mb": round(csv["plan_peak_rss_mb"], 1), "peak_rss_mb": round(csv["peak_rss_mb"], 1),
            "workers_peak_rss_mb": round(csv["workers_peak_rss_mb"], 1),
            "raw_peak_rss_mb": round(raw["peak_rss_mb"], 1),
            "raw_workers_peak_rss_mb": round(raw["workers_peak_rss_mb"], 1),
            "file": "tests.benchmarks.hubspot_export: HubSpot deals with Date entered per stage, companies",
            "code_path": "run_csv_import in a child process: plan (read every row, build every record with the "
                         "domain's methods, in memory) then write (history lines through import_history, one "
                         "transaction; its workers as for a JSON-lines file of that size)"}


def measure(bench: Bench) -> list[Metric]:
    opportunities = max(MIN_OPPORTUNITIES, round(FULL_SCALE_OPPORTUNITIES * bench.plan.scale))
    export = write_export(bench.workdir / "hubspot", opportunities)
    log(f"importing a HubSpot-shaped export of {opportunities:,} opportunities and {export.companies:,} companies "
        "(crm import MAPPING.toml's code path)")
    csv_url = bench.database()
    csv = run_child("csv_import", csv_url, str(export.mapping))
    path, lines = _export_log(bench, csv_url)
    log(f"importing the same {lines:,} events as JSON lines (crm import FILE.jsonl's code path)")
    raw = run_child("raw_import", bench.database(), path)
    if raw["events"] != csv["events"] or lines != csv["events"]:
        raise RuntimeError(f"the CSV import wrote {csv['events']:,} events, its export has {lines:,} lines and "
                           f"the raw import wrote {raw['events']:,}")
    rows_rate, events_rate = csv["rows"] / csv["seconds"], csv["events"] / csv["seconds"]
    share, details = ratio(events_rate, raw["events"] / raw["seconds"]), _details(export, csv, raw)
    baseline = "the raw JSON-lines import (import_history, crm import's defaults) of the very same events"
    return [
        Metric("csv_import_rows", round(rows_rate), "rows/s", f"{baseline}, as rows of the file per second",
               round(csv["rows"] / raw["seconds"]), share, "none (informational)", None,
               {name: details[name] for name in ("opportunities", "companies", "rows", "file_mib", "seconds",
                                                 "raw_seconds")} | {"more": "in csv_import_events"}),
        Metric("csv_import_events", round(events_rate), "events/s", baseline, round(raw["events"] / raw["seconds"]),
               share, "none (informational)", None, details),
    ]
