"""The aggregates one CSV import makes, held in memory, and what it refused and skipped.

Each record (an account, an opportunity with all its stage rows, a lead …) is built by the aggregates' own
domain methods, as a command would (`attempt`): a rule it breaks refuses the record's rows, and the
aggregate is dropped, so a record is imported whole or not at all. Records other rows point at (an
account for its opportunities) are found here or in the log, by the UUID their source id gives
(`domain.external_ids.external_uuid`). Contacts are customers of their own source, `<source>-contact`
(`salesforce-contact:003…`): accounts and contacts are separate id spaces in HubSpot and others, so company
5001 and contact 5001 are two records; lookups by the bare id still work while it is unique.

A deal or a ticket lives in its account's home partition (`domain.partitions`): its id is its source id's UUID
(the record's *key* here, which finds duplicates) placed in the account's partition, so the key alone no longer
names it; `record_of` finds it among this import's records, else in the log (`logged_id`: one read of the log's
deal and ticket openings, whatever their partition). A deal imported before home partitions keeps its old id
(`keep_legacy_id`): re-importing its export extends it rather than making a second deal.

A record whose UUID is already in the log is built from the file all the same and, once every file is read,
compared with the log's events of that aggregate (`reconcile`: type, business time and fields, not the
recording's actor, correlation id or timestamp): the same events → unchanged, nothing written (so importing
the same export again is a no-op); the log's events a prefix of the file's → extended, only the rest is
written, continuing the aggregate's versions (next week's export: a Closed Won row closes the deal, new members
of a campaign are recorded); anything else → the source changed what the log holds, and the record is refused
naming its first differing row and what differs (history is not rewritten; fix the row or import the rest
with `--rejects`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.utils import get_topic

from domain.base import EARLIEST, CrmAggregate, Meta
from domain.errors import DomainError
from domain.external_ids import external_uuid
from domain.deal import Deal
from domain.partitions import in_partition, partition_of
from domain.ticket import Ticket
from domain.pipeline import Pipeline, pipeline_id
from domain.vocabulary import DEFAULT_VOCABULARIES, Vocabularies
from services.application import CrmApplication
from services.event_envelope import event_type
from services.history.csv_import.csv_rows import Cells, Instant, Row, RowRefused
from services.history.csv_import.mapping import FileSpec, Mapping

KIND_NAMES = {"customer": "account", "contact": "contact", "deal": "opportunity", "lead": "lead",
              "ticket": "ticket", "campaign": "campaign"}
PLACED = ("deal", "ticket")  # kinds whose id is placed in their customer's home partition
UNCOMPARED = ("timestamp", "correlation_id", "actor", "clocked")  # of the recording, not of the business


@dataclass(frozen=True)
class Refused:
    """A refused row: where, which column, why, and its original cells (for `--rejects`)."""

    file: str
    line: int
    column: str
    reason: str
    values: dict[str, str]


@dataclass
class Session:
    app: CrmApplication
    mapping: Mapping
    correlation_id: str = field(default_factory=lambda: uuid4().hex)
    created: dict[UUID, CrmAggregate] = field(default_factory=dict)  # in creation order
    kinds: dict[UUID, str] = field(default_factory=dict)
    refusals: list[Refused] = field(default_factory=list)
    refused_records: dict[UUID, Refused] = field(default_factory=dict)  # the first refusal of each record
    skipped: dict[str, int] = field(default_factory=dict)  # file → rows of records already in the log
    seen: dict[UUID, Row] = field(default_factory=dict)  # record → its first row, for duplicate ids
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    vocabularies: Vocabularies = DEFAULT_VOCABULARIES  # the installation's, read once (`CrmApplication.vocabularies`)
    origins: dict[UUID, list[Row | None]] = field(default_factory=dict)  # record → the row of each event
    record_rows: dict[UUID, list[Row]] = field(default_factory=dict)  # record → its rows
    companions: dict[UUID, list[Row]] = field(default_factory=dict)  # record → rows of other files it read
    extended: dict[UUID, int] = field(default_factory=dict)  # record in the log → how many events it holds
    unchanged: int = 0  # records already in the log whose rows give the events it holds
    detail_rows: dict[str, int] = field(default_factory=dict)  # file → rows read beside a [[files]] entry
    placed: dict[UUID, UUID] = field(default_factory=dict)  # a deal's or ticket's key → its id (`record_of`)
    _in_log: dict[UUID, bool] = field(default_factory=dict)
    _logged: dict[UUID, UUID] | None = None  # see `logged_id`
    _empty_log: bool | None = None

    def meta(self, at: datetime, actor: str = "") -> Meta:
        return Meta(occurred_at=at, actor=actor or self.mapping.actor, correlation_id=self.correlation_id)

    def source(self, kind: str) -> str:
        """The source a record's external id names: the mapping's, `<source>-contact` for contacts."""
        return f"{self.mapping.source}-contact" if kind == "contact" else self.mapping.source

    def uuid(self, kind: str, external_id: str) -> UUID:
        """A record's CRM id; a contact is a customer of the source `<source>-contact` (see `source`)."""
        if kind == "contact":
            return external_uuid("customer", self.source(kind), external_id)
        return external_uuid(kind, self.mapping.source, external_id)

    def record_of(self, kind: str, external_id: str) -> UUID:
        """The CRM id of a record: its key, except a deal or ticket, whose id is its key placed in its
        customer's partition: the one this import built, else the one in the log, else the key (nowhere:
        `reference` says so)."""
        key = self.uuid(kind, external_id)
        if kind not in PLACED:
            return key
        return self.placed.get(key) or self.logged_id(key) or key

    def logged_id(self, key: UUID) -> UUID | None:
        """The id under which the log holds the deal or ticket of `key`, in whatever partition (its account's,
        another account's, or its own bits: imported before home partitions). From one read of the log's
        Deal.Opened and Ticket.Opened events, on first need (none into an empty log)."""
        if self._logged is None:
            opened = [] if self._is_empty_log() else self.app.read_log(topics=[get_topic(Deal.Opened),
                                                                              get_topic(Ticket.Opened)])
            self._logged = {in_partition(0, event.originator_id): event.originator_id for _, event in opened}
        return self._logged.get(in_partition(0, key))

    def _is_empty_log(self) -> bool:
        if self._empty_log is None:
            self._empty_log = self.app.event_count() == 0
        return self._empty_log

    def in_log(self, aggregate_id: UUID) -> bool:
        """Whether the log holds this aggregate: one query each (≈ 0.3 ms on PostgreSQL), none into an empty log."""
        if self._is_empty_log():
            return False
        if aggregate_id not in self._in_log:
            self._in_log[aggregate_id] = aggregate_id in self.app.repository
        return self._in_log[aggregate_id]

    def pipeline(self, key: str) -> Pipeline:
        """The mapping's pipeline: from the log if defined there (it must have every stage the mapping
        names), else defined by this import (`Pipeline.Defined`)."""
        if key not in self.pipelines:
            spec = self.mapping.pipelines[key]
            if self.in_log(pipeline_id(key)):
                pipeline = self.app.get(Pipeline, pipeline_id(key))
                missing = [k for k in spec.stage_keys if k not in pipeline.stage_keys]
                if missing:
                    raise DomainError(f"pipeline {key!r} is already defined without stage(s) {', '.join(missing)}; "
                                      "insert them first or map to its stages: " + ", ".join(pipeline.stage_keys))
            else:
                pipeline = Pipeline.define(key, spec.name, spec.stages, self.meta(EARLIEST))
                self.created[pipeline.id] = pipeline
                self.kinds[pipeline.id] = "pipeline"
            self.pipelines[key] = pipeline
        return self.pipelines[key]

    def reference(self, kind: str, external_id: str, column: str) -> UUID:
        """The id of a record this one points at, which must have been imported or be in the log."""
        key, target = self.uuid(kind, external_id), self.record_of(kind, external_id)
        if target in self.refused_records or key in self.refused_records:
            first = self.refused_records.get(target) or self.refused_records[key]
            raise RowRefused(column, f"{KIND_NAMES[kind]} {external_id!r} was refused ({first.file} line "
                                     f"{first.line}: {first.reason})")
        if target not in self.created and not self.in_log(target):
            raise RowRefused(column, f"unknown {KIND_NAMES[kind]} {external_id!r}: in no imported file nor in the log")
        return target

    def found(self, kind: str, external_id: str) -> Any:
        """The aggregate of a record made by this import (None if it is in the log or nowhere)."""
        return self.created.get(self.record_of(kind, external_id))

    def well_formed(self, rows: list[Row]) -> list[Row]:
        """The rows whose cells match the header; the others refused (`csv_rows.Row.problem`)."""
        for row in rows:
            if row.problem:
                self.refuse([row], row, "", row.problem, None)
        return [row for row in rows if not row.problem]

    def tag(self, aggregate: CrmAggregate, row: Row | None) -> None:
        """The row that gave the aggregate's latest events (for a refusal after `reconcile`)."""
        origins = self.origins.setdefault(aggregate.id, [])
        origins.extend([row] * (len(aggregate.pending_events) - len(origins)))

    def each_row(self, spec: FileSpec, rows: list[Row], kind: str,
                 build: Callable[[Cells, UUID], Iterable[CrmAggregate]]) -> None:
        """One record per row, identified by its `id` cell (a row without one is refused)."""
        for row in rows:
            cells = Cells(self.mapping, spec, row)
            external_id = cells.text("id")
            if not external_id:
                self.refuse([row], row, cells.column("id"), "is empty", None)
                continue
            self.attempt(kind, external_id, [row], lambda record, cells=cells: build(cells, record))

    def attempt(self, kind: str, external_id: str, rows: list[Row], build: Callable[[UUID], Iterable[CrmAggregate]],
                row_at: Callable[[datetime], Row] | None = None) -> bool:
        """Build one record from its rows; on a refusal its rows are refused and nothing of it is kept.
        A record in the log is built too, and compared with it by `reconcile`. `row_at` names the row an
        event's business time comes from (default: the first row). Returns whether it was built."""
        try:
            record = self.uuid(kind, external_id)
        except DomainError as error:
            return self.refuse(rows, rows[0], "", str(error), None)
        if record in self.seen or record in self.refused_records:
            first = self.seen.get(record) or self.refused_records[record]
            return self.refuse(rows, rows[0], "", f"duplicate id {external_id!r} (first at {first.file} line "
                                                  f"{first.line})", None)
        try:
            aggregates = list(build(record))
        except (RowRefused, DomainError) as error:
            return self.refuse(rows, getattr(error, "row", rows[0]), *column_and_reason(error), record)
        self.seen[record] = rows[0]
        aggregates = [self.keep_legacy_id(record, a) if same_record(record, a.id) else a for a in aggregates]
        for aggregate in aggregates:
            if same_record(record, aggregate.id):
                self.placed[record] = aggregate.id
            self.created[aggregate.id] = aggregate
            self.kinds[aggregate.id] = kind.replace("contact", "customer") if same_record(record, aggregate.id) \
                else "customer"
            self.record_rows[aggregate.id] = list(rows)
            self.origins[aggregate.id] = [row_at(e.occurred_at) if row_at else rows[0] for e in aggregate.pending_events]
        return True

    def keep_legacy_id(self, key: UUID, aggregate: CrmAggregate) -> CrmAggregate:
        """The record as built, unless the log holds it under another id (`logged_id`: a deal or ticket imported
        before home partitions, or one whose account the export changed): then the same events under that id,
        so that `reconcile` compares them with it — unchanged, extended, or refused for its other account —
        rather than writing a second record with the same source id."""
        held = self.logged_id(key) if type(aggregate).__name__.lower() in PLACED else None
        if held is None or held == aggregate.id:
            return aggregate
        events = [replace(event, originator_id=held) for event in aggregate.pending_events]  # type: ignore[type-var]
        rebuilt = None
        for event in events:
            rebuilt = event.mutate(rebuilt)
        rebuilt._pending_events.extend(events)  # type: ignore[union-attr]
        return rebuilt  # type: ignore[return-value]

    def from_log(self, aggregate_id: UUID, keep: Callable[[Any], bool]) -> CrmAggregate:
        """An aggregate of the log rebuilt from its first events that `keep` accepts, as if this import made
        them (a campaign no file of this import holds, for its members' responses); `reconcile` compares it."""
        events = list(itertools.takewhile(keep, self.log_events(aggregate_id)))
        aggregate = None
        for event in events:
            aggregate = event.mutate(aggregate)
        aggregate._pending_events.extend(events)  # type: ignore[union-attr]
        self.created[aggregate_id], self.kinds[aggregate_id] = aggregate, "campaign"  # type: ignore[assignment]
        self.origins[aggregate_id] = [None] * len(events)
        return aggregate  # type: ignore[return-value]

    def log_events(self, aggregate_id: UUID) -> list[Any]:
        return list(self.app.events.get(aggregate_id))

    def reconcile(self) -> None:
        """Compare each built record that is in the log with the log's events (see the module docstring)."""
        for record in [r for r in self.created if self.in_log(r)]:
            built, held = self.created[record].pending_events, self.log_events(record)
            index, difference = first_difference(held, built)
            rows = list({id(row): row for row in [*self.record_rows.get(record, []), *self.origins.get(record, [])]
                         if row is not None}.values())
            if difference is None and len(built) == len(held):
                del self.created[record]
                self.unchanged += 1
                for row in [*rows, *self.companions.get(record, [])]:
                    self.skipped[row.file] = self.skipped.get(row.file, 0) + 1
            elif difference is None:
                self.extended[record] = len(held)
            else:
                del self.created[record]
                origins = self.origins.get(record, [])
                failing = next((row for row in origins[index:] + origins[::-1] if row is not None), None)
                if failing is not None:
                    self.refuse(rows, failing, "", f"differs from the log: {difference}", record)

    def written_events(self, aggregate: CrmAggregate) -> list[Any]:
        """The events of an aggregate this import writes: all of a new one, the rest of an extended one."""
        return aggregate.pending_events[self.extended.get(aggregate.id, 0):]

    def refuse(self, rows: list[Row], failing: Row, column: str, reason: str, record: UUID | None) -> bool:
        first = Refused(failing.file, failing.line, column, reason, failing.values)
        if record is not None:
            self.refused_records.setdefault(record, first)
        self.refusals.append(first)
        for row in rows:
            if row is not failing:
                self.refusals.append(Refused(row.file, row.line, "", f"depends on refused {failing.file} line "
                                             f"{failing.line}: {reason}", row.values))
        return False


def same_record(key: UUID, record_id: UUID) -> bool:
    """Whether `record_id` is the record of `key` (equal but for the home partition's bits)."""
    return in_partition(partition_of(record_id), key) == record_id


def first_difference(held: list[Any], built: list[Any]) -> tuple[int, str | None]:
    """Where the log's events (`held`) stop being a prefix of the file's (`built`), and what differs there."""
    for index, old in enumerate(held):
        where = f"event {index + 1} of the record in the log ({event_type(old)} at {old.occurred_at.isoformat()})"
        if index >= len(built):
            return index, f"{where} comes from no row of the file"
        new = built[index]
        if event_type(new) != event_type(old):
            return index, f"{where} is {event_type(new)} at {new.occurred_at.isoformat()} in the file"
        fields = [name for name in {**vars(old), **vars(new)} if name not in UNCOMPARED
                  and vars(old).get(name) != vars(new).get(name)]
        if fields:
            return index, f"{where}: " + "; ".join(f"{name} is {vars(new).get(name)!r} in the file, "
                                                  f"{vars(old).get(name)!r} in the log" for name in fields)
    return len(held), None


def column_and_reason(error: RowRefused | DomainError) -> tuple[str, str]:
    """What a refusal names: the column (a domain rule's refusal names none) and why."""
    return (error.column, error.reason) if isinstance(error, RowRefused) else ("", str(error))


def at_or_after(instant: Instant, last: datetime, zone: Any) -> datetime:
    """A bare date on the same day as the record's last event means "that day", not midnight before it (a
    Salesforce CloseDate of the day the opportunity was created); any other earlier instant stays, and the
    domain refuses it as running backwards."""
    if instant.date_only and instant.at < last and instant.at.date() == last.astimezone(zone).date():
        return last
    return instant.at


def set_properties(session: Session, record: CrmAggregate, properties: dict[str, str], at: datetime) -> None:
    """A record's properties from its row (product, team, account size…), recorded at its creation, as a user
    would set them right after creating it; nothing when the row has none."""
    if properties:
        record.change_properties(properties, session.meta(at))  # type: ignore[attr-defined]


def at_row(error: Exception, row: Row) -> Exception:
    """Tag an error with the row it happened at (a record of several rows refuses at the failing one)."""
    error.row = row  # type: ignore[attr-defined]
    return error

