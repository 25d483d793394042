"""`crm export FILE` and `crm import FILE`: the event log's history as JSON Lines, out and back in;
`crm export --parquet DIR`: the log as a Parquet archive (`services.bulk.parquet_archive`); and
`crm import MAPPING.toml` / `crm import FILE.csv --mapping MAPPING.toml`: other CRMs' CSV exports in
(`services.history.csv_import`)."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from gateways.cli.common import console, crm_application, fail, start_logging
from services.history import exporter, importer
from services.history.csv_import import csv_importer
from services.history.csv_import.import_report import ImportReport
from services.history.csv_import.mapping import YAML_SUFFIXES
from services.sharding import history_import
from services.settings import SettingsError, database_from_environment
from services.sharding.router import ShardedApplication
from services.sharding.shard_settings import shards_from_environment


class Format(str, Enum):
    events = "events"
    csv = "csv"


def detect_format(file: Path, mapping: Path | None) -> Format:
    """A mapping given, or a .toml/.csv file (or a .yaml one, refused as a mapping): CSV; anything else (.jsonl,
    .json): the event lines."""
    return Format.csv if mapping is not None or file.suffix.lower() in (".toml", ".csv", *YAML_SUFFIXES) \
        else Format.events


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}", style="bold", markup=False), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeElapsedColumn(), console=console)


def export_history(
    file: Annotated[Path | None, typer.Argument(help="JSON Lines file to write (overwritten).", dir_okay=False)] = None,
    parquet: Annotated[Path | None, typer.Option(
        "--parquet", file_okay=False, help="Write the log as Parquet files by month and partition into this "
        "directory instead (new or empty; an archive written before gets only what is new).")] = None,
) -> None:
    """Write the whole event log, in log order, to FILE as JSON Lines (one event per line); or, with --parquet DIR,
    as a Parquet archive for Spark or DuckDB (`services.bulk.parquet_archive`)."""
    if (file is None) == (parquet is None):
        raise fail("give a FILE to write JSON Lines to, or --parquet DIR (not both)")
    if parquet is not None:
        return export_parquet(parquet)
    with crm_application() as crm, _progress() as progress:
        task = progress.add_task("Exporting", total=crm.event_count() or 1)
        started = time.perf_counter()
        with file.open("wb") as out:
            count = exporter.export_history(crm, out, lambda done, total: progress.update(task, completed=done))
        progress.update(task, completed=count or 1)
    console.print(f"Exported {count:,} events to {file} in {time.perf_counter() - started:.1f} s.")


def export_parquet(directory: Path) -> None:
    """`crm export --parquet DIR`: the flat log of every shard into DIR, or what DIR lacks of it."""
    try:  # here: pyarrow costs ≈ 0.3 s to import, and comes with the `bulk` extra only
        from services.bulk.log_reader import UnsupportedLog
        from services.bulk.parquet_archive import ArchiveRefused, export_archive
    except ImportError as error:
        raise fail(f"--parquet needs pyarrow ({error}): pip install 'crm[bulk]'") from None

    started = time.perf_counter()
    try:
        databases = shards_from_environment() or [database_from_environment()]
        events, manifest = export_archive(databases, directory)
    except (ArchiveRefused, UnsupportedLog, SettingsError) as error:
        raise fail(str(error)) from None
    heads = ", ".join(f"{head:,}" for head in manifest.heads)
    console.print(f"Exported {events:,} events to {directory} (export {manifest.number}, head {heads}) "
                  f"in {time.perf_counter() - started:.1f} s.")


def import_history(
    file: Annotated[Path, typer.Argument(help="JSON Lines file written by `crm export`.", exists=True,
                                         dir_okay=False, readable=True)],
    batch: Annotated[int, typer.Option(min=1, help="Events per transaction.")] = importer.DEFAULT_BATCH,
    jobs: Annotated[int | None, typer.Option(min=1, help="Processes that check and encode the lines on PostgreSQL "
                                                         "(default: one per core for files of 20 MiB or more, "
                                                         "else 1).")] = None,
    mapping: Annotated[Path | None, typer.Option(help="TOML mapping of a CSV export (FILE is then one of its "
                                                      "files).", exists=True, dir_okay=False)] = None,
    format: Annotated[Format | None, typer.Option("--format", help="events (JSON Lines) or csv; default: "
                                                                   "by the file's suffix.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="CSV, or any import with CRM_SHARD_URLS: print what "
                                                            "would be imported (per shard); write nothing; exit 1 "
                                                            "if rows would be refused.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="CSV: the report as JSON.")] = False,
    rejects: Annotated[Path | None, typer.Option(help="CSV: write refused rows here (original columns, line, "
                                                      "reason) and import the rest.", dir_okay=False)] = None,
) -> None:
    """Append the history in FILE to the event log; one bad line and nothing is written. FILE is JSON Lines
    of events (.jsonl), or a CSV import's mapping (.toml), or a CSV file with --mapping. Logs each batch
    written, a refusal and the end on stderr (CRM_LOG_FORMAT: text or json)."""
    if (format or detect_format(file, mapping)) is Format.csv:
        import_csv(file, mapping, dry_run, as_json, rejects)
        return
    start_logging()
    with crm_application() as crm, _progress() as progress:
        tasks: dict[str, TaskID] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase.capitalize(), total=total or 1)
            progress.update(tasks[phase], completed=done)

        started = time.perf_counter()
        if isinstance(crm, ShardedApplication):
            _import_into_shards(crm, file, batch, update, dry_run)
            return
        try:
            count = importer.import_history(crm, file, batch, update, jobs)
        except importer.ImportRefused as refused:
            raise fail(f"{file}, {refused}; nothing was imported") from None
    console.print(f"Imported {count:,} events from {file} in {time.perf_counter() - started:.1f} s.")


def _import_into_shards(crm: ShardedApplication, file: Path, batch: int, update: importer.Progress,
                        dry_run: bool) -> None:
    """Event lines into several shards: per shard what was (or would be) written, and what an earlier run that
    stopped between shards had written already."""
    started = time.perf_counter()
    try:
        done = history_import.import_sharded_history(crm, file, batch, update, dry_run=dry_run)
    except importer.ImportRefused as refused:
        raise fail(f"{file}, {refused}; nothing was imported") from None
    for line in done.lines():
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    if dry_run:
        console.print("Dry run: nothing was written.")
    else:
        console.print(f"Imported {done.written:,} events from {file} into {len(done.parts)} shards in "
                      f"{time.perf_counter() - started:.1f} s.")


def import_csv(file: Path, mapping: Path | None, dry_run: bool, as_json: bool, rejects: Path | None) -> None:
    """`crm import` of a CSV export through its mapping: the report on stdout, exit 1 if anything was refused
    without --rejects (then nothing is written) or, with --dry-run, would be."""
    if mapping is None and file.suffix.lower() not in (".toml", *YAML_SUFFIXES):
        raise fail(f"{file}: a CSV export is imported through its mapping: crm import {file} --mapping MAP.toml")
    mapping_path, csv_file = (file, None) if mapping is None else (mapping, file)
    with crm_application() as crm:
        try:
            plan = csv_importer.mapping_for(mapping_path, csv_file)
            if isinstance(crm, ShardedApplication):
                report, shards = history_import.run_sharded_csv_import(crm, plan, dry_run=dry_run, rejects=rejects)
            else:
                report, shards = csv_importer.run_csv_import(crm, plan, dry_run=dry_run, rejects=rejects), None
        except csv_importer.CsvImportRefused as refused:
            _print_report(refused.report, as_json)
            raise fail(f"{refused}; fix the rows, or import the rest with --rejects FILE") from None
        except (csv_importer.MappingError, csv_importer.FileRefused, importer.ImportRefused) as error:
            raise fail(f"{error}; nothing was imported") from None
    _print_report(report, as_json)
    if shards is not None and not as_json:
        for line in shards.lines():
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    if report.dry_run and report.refused:  # so that a script can tell (exit 1, as the import itself would)
        raise fail(f"{len(report.refused):,} row(s) would be refused (dry run: nothing was written)")


def _print_report(report: ImportReport, as_json: bool) -> None:
    if as_json:
        typer.echo(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
        return
    for line in report.lines():
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    if not report.dry_run:
        total = sum(report.events.values())
        skipped = sum(report.skipped.values())
        console.print(f"Imported {report.written:,} events." if total else
                      f"Nothing new to import ({skipped:,} rows already imported).", markup=False, soft_wrap=True)
        if report.rejects:
            console.print(f"Refused rows written to {', '.join(report.rejects)}.", markup=False, soft_wrap=True)
