"""`crm import MAPPING.toml` (or `crm import FILE.csv --mapping MAPPING.toml`): CSV exports into the log.

Every file of the mapping is read and every row built into events by the domain's own methods (see
`import_session`) before anything is written; the new events become history lines, which
`services.history.importer.import_history` — the one path that writes history — checks again and writes
in one transaction. So a refused import writes nothing, and what is written is what the rules of
`crm import`'s raw path accept, which every read model applies. A row whose cells do not match the header is
refused; files with no row at all are refused ("nothing to import"), and a pipeline the import would define
for no record is not written. A pipeline the import defines is dated at its earliest record's business time.
`--rejects` must not name a file the mapping reads.

Lines are ordered so that every reference points back: the pipelines, campaigns, customers, leads, deals
and tickets are created first (in that order), then every other event in business-time order (each
aggregate's events stay in their order). Files are read in the order their shapes depend on each other
(accounts before the opportunities that name them, opportunities before the leads converted into them).

A mapping file, in short (a complete one: tests/fixtures/imports/salesforce/mapping.toml):

    source = "salesforce"             # external ids are "salesforce:<Id>"; CRM ids derive from them
    timezone = "America/New_York"     # for dates and times without a zone
    currency = "USD"                  # when a row has no currency column
    actor = "import:salesforce"       # who the imported events say did it
    date_formats = ["%m/%d/%Y"]       # tried after ISO 8601

    [defaults]                        # what real data lacks: region, industry, channel, owner, loss_reason …
    channel = "web"

    [[pipelines]]                     # defined by the import (Pipeline.Defined) unless already in the log
    key = "sf"
    name = "Salesforce"
    stages = [{ key = "prospecting", label = "Prospecting" }, { key = "proposal", label = "Proposal/Price Quote" }]

    [stages.sf]                       # source stage name → stage key, won or lost
    "Closed Won" = "won"
    "Closed Lost" = "lost"

    [values.channel]                  # LeadSource/AccountSource → acquisition channel; also priority,
    "Partner Referral" = "partner"    # lead_status, ticket_status, response, ticket_channel

    [[files]]
    path = "Opportunity.csv"          # relative to the mapping file
    shape = "opportunities"           # accounts contacts leads opportunities stage_history campaigns
    pipeline = "sf"                   #   campaign_members tickets
    [files.columns]                   # role → column (each shape's module lists its roles)
    id = "Id"
    account = "AccountId"
    [files.properties]                # column → property name: set on the record at its creation
    "Product__c" = "product"
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from itertools import chain
from pathlib import Path
from typing import Any

from domain.errors import DomainError
from services.application import CrmApplication
from services.history import importer
from services.history.csv_import import (shape_customers, shape_leads, shape_opportunities, shape_stage_history,
                                         shape_tickets)
from services.history.csv_import.csv_rows import FileRefused, Row, read_rows
from services.history.csv_import.import_report import (ImportReport, date_range, event_counts, stage_counts,
                                                       write_rejects)
from services.history.csv_import.import_session import Session
from services.history.csv_import.mapping import FileSpec, Mapping, MappingError, load_mapping
from services.event_envelope import event_type
from services.history.exporter import history_line

Shape = tuple[tuple[str, ...], tuple[str, ...], Callable[[Session, FileSpec, list[str], list[Row]], None]]
# shape → (required roles, known roles, importer), in the order files are read
SHAPES: dict[str, Shape] = {
    "campaigns": (shape_customers.CAMPAIGN_REQUIRED, shape_customers.CAMPAIGN_ROLES, shape_customers.import_campaigns),
    "accounts": (shape_customers.REQUIRED, shape_customers.ROLES, shape_customers.import_customers),
    "contacts": (shape_customers.REQUIRED, shape_customers.ROLES, shape_customers.import_customers),
    "opportunities": (shape_opportunities.REQUIRED, shape_opportunities.ROLES, shape_opportunities.import_opportunities),
    "stage_history": (shape_stage_history.REQUIRED, shape_stage_history.ROLES, shape_stage_history.import_history_rows),
    "leads": (shape_leads.REQUIRED, shape_leads.ROLES, shape_leads.import_leads),
    "campaign_members": (shape_customers.MEMBER_REQUIRED, shape_customers.MEMBER_ROLES, shape_customers.import_members),
    "tickets": (shape_tickets.REQUIRED, shape_tickets.ROLES, shape_tickets.import_tickets),
}
KIND_ORDER = ("pipeline", "campaign", "customer", "lead", "deal", "ticket")


class CsvImportRefused(ValueError):
    """Rows were refused and no `--rejects` file was given: nothing was written; the report says which."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(f"{len(report.refused):,} row(s) refused; nothing was imported")
        self.report = report


def mapping_for(mapping_path: Path, csv_file: Path | None = None) -> Mapping:
    """The mapping, narrowed to `csv_file` when one is given (the mapping's file of that name, or its only
    file, read from `csv_file` instead)."""
    mapping = load_mapping(mapping_path)
    if csv_file is None:
        return mapping
    matching = [f for f in mapping.files if f.name == csv_file.name] or (mapping.files if len(mapping.files) == 1
                                                                          else [])
    if not matching:
        raise MappingError(mapping_path, f"no [[files]] entry for {csv_file.name} (it has: "
                                         f"{', '.join(f.name for f in mapping.files) or 'none'})")
    return replace(mapping, files=[replace(matching[0], path=csv_file)])


def plan_import(app: CrmApplication, mapping: Mapping) -> tuple[Session, ImportReport, list[Any]]:
    """Read every file and build its records in memory; nothing is written. Returns the session, the report
    (as for a dry run) and the new events in the order they are to be written."""
    session, rows_read = Session(app, mapping, vocabularies=app.vocabularies(fresh=True)), {}
    if mapping.campaigns:
        shape_customers.mapping_campaigns(session)
    for spec in sorted(mapping.files, key=lambda f: list(SHAPES).index(f.shape)):
        required, roles, run = SHAPES[spec.shape]
        unknown = sorted(spec.columns.keys() - set(roles))
        if unknown:
            raise MappingError(mapping.path, f"[files.columns] of {spec.name}: unknown role(s) {', '.join(unknown)} "
                                             f"for shape {spec.shape}; its roles are: {', '.join(roles)}")
        header, rows = read_rows(spec, required)
        rows_read[spec.name] = rows_read.get(spec.name, 0) + len(rows)
        try:
            run(session, spec, header, session.well_formed(rows))
        except DomainError as error:  # rows' refusals are kept per row: this is the mapping against the log
            raise MappingError(mapping.path, str(error)) from None
    session.reconcile()
    for name, count in session.detail_rows.items():
        rows_read[name] = rows_read.get(name, 0) + count
    if not sum(rows_read.values()) and not mapping.campaigns:
        raise FileRefused(f"{mapping.path}: no file of the mapping has a row (only headers): nothing to import")
    events = ordered_events(session)
    if all(event_type(e) == "crm.Pipeline.Defined" for e in events):
        events = []  # a pipeline alone is not history: it is defined with the first record that uses it
    first, last = date_range(events)
    report = ImportReport(str(mapping.path), rows_read, session.skipped, event_counts(events),
                          sorted(session.refusals, key=lambda r: (r.file, r.line)), first, last,
                          stage_counts(events, {k: p.stage_keys for k, p in mapping.pipelines.items()},
                                       {r: session.created[r].pipeline for r in session.extended
                                        if session.kinds[r] == "deal"}), dry_run=True,
                          unchanged=session.unchanged, extended=len(session.extended))
    return session, report, events


def ordered_events(session: Session) -> list[Any]:
    """Creations first by kind (so references point back), then the rest in business time (an extended
    record's new events among them)."""
    aggregates = sorted(session.created.values(), key=lambda a: KIND_ORDER.index(session.kinds[a.id]))
    new = [a for a in aggregates if a.id not in session.extended]
    creations = [a.pending_events[0] for a in new]
    rest = sorted(chain(chain.from_iterable(a.pending_events[1:] for a in new),
                        chain.from_iterable(session.written_events(a) for a in aggregates if a.id in session.extended)),
                  key=lambda e: e.occurred_at)
    return _dated_pipelines(creations + rest)


def _dated_pipelines(events: list[Any]) -> list[Any]:
    """A pipeline this import defines is dated at its earliest record's instant, not at the start of business
    time: as-of answers before that do not show a pipeline nobody had (domain.pipeline's define has no
    business time of its own to offer)."""
    instants = [e.occurred_at for e in events if event_type(e) != "crm.Pipeline.Defined"]
    if not instants:
        return events
    earliest = min(instants)
    return [replace(e, occurred_at=earliest) if event_type(e) == "crm.Pipeline.Defined" else e for e in events]


def run_csv_import(app: CrmApplication, mapping: Mapping, *, dry_run: bool = False, rejects: Path | None = None,
                   write: Callable[[CrmApplication, list[Any]], int] | None = None) -> ImportReport:
    """Import (or with `dry_run` only plan) the mapping's files. Refused rows refuse the whole import
    (CsvImportRefused) unless `rejects` names a file to write them to; FileRefused, MappingError and
    `importer.ImportRefused` also mean nothing was written. `write` (default `write_events`): how the planned
    events are written (over shards: `services.sharding.history_import`)."""
    if rejects is not None:
        check_rejects_path(mapping, rejects)
    _, report, events = plan_import(app, mapping)
    if dry_run:
        return report
    if report.refused and rejects is None:
        raise CsvImportRefused(report)
    if rejects is not None and report.refused:
        report.rejects = write_rejects(rejects, report.refused)
    report.dry_run = False
    if events:
        report.written = (write or write_events)(app, events)
    return report


def check_rejects_path(mapping: Mapping, rejects: Path) -> None:
    """`--rejects` must not name the mapping or a file it reads (nor, as `<stem>-<file>.csv` when several files
    refuse rows, such a file): writing the refused rows there would replace the user's export."""
    inputs = {mapping.path.resolve()} | {spec.path.resolve() for spec in mapping.files}
    inputs |= {(spec.path.parent / spec.options["details"]["path"]).resolve() for spec in mapping.files
               if isinstance(spec.options.get("details"), dict) and "path" in spec.options["details"]}
    targets = {rejects.resolve()} | {rejects.with_name(f"{rejects.stem}-{spec.path.stem}{rejects.suffix or '.csv'}")
                                     .resolve() for spec in mapping.files}
    clash = sorted(str(path) for path in targets & inputs)
    if clash:
        raise FileRefused(f"--rejects {rejects} would overwrite {clash[0]}, which the mapping reads; "
                          "name another file")


def write_events(app: CrmApplication, events: list[Any]) -> int:
    """The events as history lines through `import_history`, in one transaction."""
    with history_lines(events) as path:
        return importer.import_history(app, path, batch=max(importer.DEFAULT_BATCH, len(events)))


@contextmanager
def history_lines(events: list[Any]) -> Iterator[Path]:
    """The events as a temporary file of history lines (`crm import`'s raw format), removed after."""
    with tempfile.TemporaryDirectory(prefix="crm-csv-import-") as folder:
        path = Path(folder) / "events.jsonl"
        with path.open("wb") as out:
            for event in events:
                out.write(history_line(event))
        yield path


__all__ = ["CsvImportRefused", "FileRefused", "MappingError", "mapping_for", "plan_import", "run_csv_import"]
