"""The CRM application service: every command of the domain, saved atomically to one event log.

It orchestrates (load, call the aggregate, save) and holds no business rule of its own.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, JSONTranscoder, Mapper
from eventsourcing.utils import get_topic

from domain.base import CrmAggregate, Meta
from domain.campaign import Campaign, require_respondent
from domain.customer import Customer
from domain.deal import Deal
from domain.errors import DomainError
from domain.exchange_rates import ExchangeRate, rate_id, require_rate
from domain.lead import Lead, require_converted_into
from domain.partitions import PARTITIONS, in_partition, partition_of
from domain.pipeline import DEFAULT_PIPELINES, Pipeline, pipeline_id
from domain.targets import OwnerTeam, Target
from domain.ticket import Ticket
from domain.vocabulary import HISTORIC, KINDS, UNKNOWN, Vocabularies, Vocabulary, vocabulary_id
from services.aggregate_cache import AggregateCache
from services.command_receipts import Receipt, now_micros
from services.commands import (AddTag, AssignLead, AssignTicket, CaptureLead, Change, ChangeAmount, ChangeConsent,
                               ChangeContactDetails, ChangeCustomerProperties, ChangeDealProperties,
                               ChangeLeadProperties, ChangeOwner, ChangeStage, ChangeTicketStatus, CloseCampaign,
                               CloseTicket, Command, ContactLead, ConvertLead, DefinePipeline, DisqualifyLead,
                               ForgetCustomer, InsertStage, LaunchCampaign, LogTouch, LoseDeal, OpenDeal, OpenTicket,
                               PlanCampaign, QualifyLead, RateTicket, RecordCost, RecordCustomerReply, RecordResponse,
                               RecordExchangeRate, RegisterCustomer, RemoveTag, RenameStage, ReopenDeal, ReopenTicket,
                               ResolveTicket, SetStageReminders, WinDeal)
from services.commands.ab_tests import DeclareWinner, DefineVariants, RecordExposures, StopVariant
from services.commands.forecasts import (AssignTeam, ChangeExpectedClose, ChangeForecastCategory, ChangeProbability,
                                         SetStageForecast, SetTarget)
from services.commands.vocabularies import (AddVocabularyValue, RetireVocabularyValue, SetVocabulary,
                                            VocabularyChange)
from services.storage.event_recorder import ReceiptPOPORecorder, RetriedSaveConflict
from services.storage.log_protection import LogNotMigrated, check_event_log, check_log_version, protect_event_log
from services.keys.key_store import KeyStore
from services.keys.sealing import PersonalDataMapper, subjects_of_aggregates
from services.storage.read_model_store import ReadModelStore
from services.storage.schema_lock import advisory_lock
from services.settings import Database, database_from_environment, reporting_currency_from_environment
from services.storage.transcodings import DateAsISO

A = TypeVar("A", bound=CrmAggregate)
T = TypeVar("T")
# How long a process trusts its copy of the vocabularies: a value another process added is seen at once (a
# refusal reads them again), one it retired is still accepted here for at most this long. 5 s: 5 small
# reads per 5 s instead of per command.
VOCABULARY_TTL_SECONDS = 5.0


_HANDLERS: dict[type[Command], str] = {}  # command type → the name of its handler method
H = TypeVar("H", bound=Callable[..., Any])


def handles(command_type: type[Command]) -> Callable[[H], H]:
    """Register the decorated method as the handler of `command_type` (see `CrmApplication.handle`); by
    name, so that a subclass or a test double that replaces the method is the one called."""
    def register(method: H) -> H:
        _HANDLERS[command_type] = method.__name__
        return method
    return register


class NotFound(LookupError):
    """No aggregate of the asked type has that id."""


class ConcurrencyConflict(RuntimeError):
    """Someone else changed the aggregate first (stale expected version or a concurrent save)."""


class ConflictAfterRetry(ConcurrencyConflict):
    """A save retried after a lost connection met a conflict, perhaps with its own first attempt's commit."""


def _replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """eventsourcing's `project_aggregate` without its per-event `isinstance` check against a runtime
    Protocol, which cost more than applying the event (every event of the log has `mutate`)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class AlreadyExists(ConcurrencyConflict):
    """A record with that external id is already in the log (HTTP 409, like any other conflicting write)."""


class LastWrite:
    """The log position of this process's latest write: a change's answer carries it, so that its client
    can ask a read model to have applied it first (concurrent saves: the highest wins, under a lock)."""

    def __init__(self) -> None:
        self.position = 0
        self._lock = threading.Lock()

    def advance(self, position: int) -> None:
        with self._lock:
            self.position = max(self.position, position)


class CrmApplication(Application):
    """One append-only, totally ordered log holding every CRM aggregate's events."""

    name = "CRM"
    _staged: list[CrmAggregate] | None = None  # a command's view collects its saves here (see `staged`)

    def __init__(self, database: Database | None = None) -> None:
        self.database = database or database_from_environment()
        with advisory_lock(self.database):  # the tables, functions and triggers, one starting process at a time
            migrated = check_event_log(self.database, f"{self.name.lower()}_events")  # PostgreSQL: by its owner
            self.keys = KeyStore(ReadModelStore(self.database))  # before the mapper, which seals personal data with them
            super().__init__(env=self.database.env)
            if migrated is not None:
                self._check_version(migrated)
            elif self.database.kind != "memory":
                protect_event_log(self.database, self.recorder.events_table_name)  # type: ignore[attr-defined]
        self._known_pipelines: dict[str, Pipeline] = {}  # see pipeline_with_stage
        self._recent = AggregateCache()
        self._vocabularies: tuple[float, Vocabularies] | None = None  # (monotonic time read, terms): see `vocabularies`
        self.last_write = LastWrite()  # shared with staged views (shallow copies)
        self.reporting_currency = reporting_currency_from_environment()

    def _check_version(self, fingerprint: str) -> None:
        try:
            check_log_version(self.recorder, fingerprint)
        except LogNotMigrated:
            self.close()  # the pools opened so far
            raise

    def _notify(self, recordings: list[Any]) -> None:
        """After a save: remember its log position, for read-your-writes (`X-Log-Position`)."""
        super()._notify(recordings)
        self.last_write.advance(max((r.notification.id or 0 for r in recordings), default=0))

    def construct_recorder(self) -> ApplicationRecorder:
        if self.database.kind == "memory":
            return ReceiptPOPORecorder()  # the library's in-memory factory has no recorder setting
        return super().construct_recorder()

    def construct_mapper(self) -> Mapper[UUID]:
        return PersonalDataMapper(self.keys, transcoder=self.construct_transcoder())

    def close(self) -> None:
        if self._staged is not None:
            return  # a staged view (also closed when collected) shares its application's connections
        super().close()
        self.keys.store.close()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # --- generic load / change / save ------------------------------------------------------

    def get(self, aggregate_type: type[A], aggregate_id: UUID) -> A:
        try:
            aggregate = self.repository.get(aggregate_id, projector_func=_replay)
        except AggregateNotFoundError:
            raise NotFound(f"no {aggregate_type.__name__.lower()} with id {aggregate_id}") from None
        if not isinstance(aggregate, aggregate_type):
            raise NotFound(f"{aggregate_id} is a {type(aggregate).__name__.lower()}, not a {aggregate_type.__name__.lower()}")
        return aggregate

    def save_new(self, *aggregates: CrmAggregate) -> None:
        """Save new aggregates (and changes to loaded ones) in one transaction (in a `staged` view: keep
        them for its `commit`)."""
        if self._staged is not None:
            self._staged.extend(aggregates)
            return
        self._write(aggregates, None)

    def save_new_record(self, record: CrmAggregate) -> None:
        """Save a new customer, lead, deal, ticket or campaign; one with an external id that is already in the
        log is refused (its id derives from that external id), saying which record has it."""
        external_id = getattr(record, "external_id", "")
        held = self._held(ids_of_external_id(type(record), record.id)) if external_id else None  # imported only
        if held is not None:
            raise AlreadyExists(f"a {type(record).__name__.lower()} with external id {external_id} "
                                f"already exists (id {held}); it was not created again")
        self.save_new(record)

    def _held(self, candidates: list[UUID]) -> UUID | None:
        """The first of `candidates` the log has events of: one query (`held_ids` of the recorders here), else
        one per candidate (another recorder)."""
        held_ids = getattr(self.recorder, "held_ids", None)
        found = held_ids(candidates) if held_ids is not None else \
            {i for i in candidates if self.recorder.select_events(i, limit=1)}
        return next((i for i in candidates if i in found), None)

    def _write(self, aggregates: Sequence[CrmAggregate], receipt: Receipt | None) -> None:
        self.keys.ensure(subjects_of_aggregates(aggregates))  # one round trip
        changed = [a for a in aggregates if a.version > len(a.pending_events)]  # loaded, not created here
        try:
            self._save_aggregates(aggregates, {} if receipt is None else {"receipt": receipt})
        except IntegrityError as error:
            conflict = ConflictAfterRetry if isinstance(error, RetriedSaveConflict) else ConcurrencyConflict
            raise conflict(f"conflicting write: {error}") from None
        for aggregate in changed:
            self._recent.keep(aggregate)  # only after the save succeeded: a refused one is never reused

    def _save_aggregates(self, aggregates: Sequence[CrmAggregate], kwargs: dict[str, Any]) -> None:
        """The library's `save` for aggregates: its ProcessingEvent.collect_events asks of each object whether
        it is a DomainEventProtocol and a CollectEventsProtocol, runtime-Protocol checks that cost ≈ 30 µs per
        aggregate on Python 3.11 (≈ 6 % of a stage change's CPU). Ours are aggregates, always."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        for aggregate in aggregates:
            processing.events.extend(aggregate.collect_events())
            processing.aggregates[aggregate.id] = aggregate
        processing.saved_kwargs.update(kwargs)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)

    # --- one command, its events and its receipt in one transaction -----------------------------

    def staged(self) -> CrmApplication:
        """A view of this application for one command: its saves are kept, not written, until `commit`.

        It shares everything else (connections, caches), so it costs one object copy. The HTTP gateway
        uses it for a command sent with an idempotency key: it learns the answer from the command, then
        commits the events and the answer's receipt together."""
        view = copy.copy(self)
        view._staged = []
        return view

    def commit(self, receipt: Receipt) -> None:
        """Write what this staged view's command saved and `receipt`, all or nothing.

        Raises ConcurrencyConflict when an aggregate moved on or the key already has a receipt (a retry
        that overtook this one: the caller then looks the receipt up)."""
        assert self._staged is not None, "commit() belongs to a staged() view"
        aggregates, self._staged = self._staged, []
        if aggregates:
            self._write(aggregates, receipt)
        elif not self.recorder.insert_receipt(receipt):  # type: ignore[attr-defined]
            raise ConcurrencyConflict(f"idempotency key {receipt.key!r} already has an answer")

    def receipt(self, principal: str, key: str) -> Receipt | None:
        """The receipt of `principal`'s command sent with idempotency `key`, if one was written."""
        return self.recorder.select_receipt(principal, key)  # type: ignore[attr-defined, no-any-return]

    def prune_receipts(self, older_than: timedelta) -> int:
        """Forget the answers of commands older than `older_than` (a retry with such a key runs again)."""
        before = now_micros() - int(older_than.total_seconds() * 1_000_000)
        return self.recorder.prune_receipts(before)  # type: ignore[attr-defined, no-any-return]

    def keep_refusal(self, receipt: Receipt) -> Receipt | None:
        """Keep the answer of a refused command (no events): None when kept, else the receipt the key
        already had (a twin of the request answered first)."""
        if self.recorder.insert_receipt(receipt):  # type: ignore[attr-defined]
            return None
        return self.receipt(receipt.principal, receipt.key)

    def handle(self, command: Command, meta: Meta) -> Any:
        """Run `command` (the gateways' one entry): its handler's answer, a new id or the new version."""
        return getattr(self, _HANDLERS[type(command)])(command, meta)

    def _change(self, command: Change, apply: Callable[[Any], None]) -> int:
        """Load the command's aggregate, check it is at the version the caller saw, apply, save. Returns the
        new version.

        A copy this process saved last (the aggregate cache) is changed without reading the log first: the
        save itself tells whether the copy was current, since the log takes its next version only if nobody
        else did (one round trip instead of two: ≈ 25 % of a command's CPU, here and in PostgreSQL). A copy
        that was not current — its save refused as a conflict, or the command or the version check refused on
        it — is dropped and the command decided again on the log's state, so the answer is the log's. (A
        staged view saves only at `commit`: it reads the log first, as before.)"""
        if self._staged is None:
            kept = self._recent.take(command.aggregate_id)
            if isinstance(kept, command.aggregate):
                try:
                    return self._decide(kept, command, apply)
                except ConflictAfterRetry:
                    raise  # perhaps its own first attempt committed: deciding again could write it twice
                except (DomainError, ConcurrencyConflict):
                    pass  # perhaps decided on a copy another process had overtaken: decide on the log's
            return self._decide(self.get(command.aggregate, command.aggregate_id), command, apply)
        return self._decide(self._load_for_change(command.aggregate, command.aggregate_id), command, apply)

    def _decide(self, aggregate: A, command: Change, apply: Callable[[Any], None]) -> int:
        _expect_version(aggregate, command.expected_version)
        apply(aggregate)
        self.save_new(aggregate)
        return aggregate.version

    def _load_for_change(self, aggregate_type: type[A], aggregate_id: UUID) -> A:
        """From the cache, brought up to date with the events saved since (by any process), else from the log."""
        cached = self._recent.take(aggregate_id)  # only types without personal data are ever kept
        if cached is None or not isinstance(cached, aggregate_type):
            return self.get(aggregate_type, aggregate_id)
        return _replay(cached, self.repository.event_store.get(aggregate_id, gt=cached.version))

    def history(self, aggregate_id: UUID) -> Sequence[DomainEventProtocol[UUID]]:
        """Every event of one aggregate, oldest first."""
        events = list(self.events.get(aggregate_id))
        if not events:
            raise NotFound(f"nothing recorded with id {aggregate_id}")
        return events

    def event_count(self) -> int:
        """The log's head: its highest notification id (the number of events, unless a failed insert on
        PostgreSQL skipped an id)."""
        return self.recorder.max_notification_id() or 0

    def read_log(self, topics: Sequence[str] = (), batch: int = 2000, start: int = 1) -> Iterator[tuple[int, Any]]:
        """All events from log position `start` on, in notification order, as (notification id, domain event)."""
        while True:
            notifications = self.recorder.select_notifications(start, batch, topics=topics)
            for n in notifications:
                yield n.id, self.mapper.to_domain_event(n)
            if len(notifications) < batch:
                return
            start = notifications[-1].id + 1

    # --- pipelines ----------------------------------------------------------------------------

    def pipeline(self, key: str) -> Pipeline:
        try:
            return self.get(Pipeline, pipeline_id(key))
        except NotFound:
            raise DomainError(f"unknown pipeline {key!r}") from None

    def pipeline_with_stage(self, key: str, stage: str) -> Pipeline:
        """The pipeline `key`, read once per process while it has `stage`: stages are only ever added
        or renamed, so a copy that has the stage is right about it; one that lacks it is read again."""
        known = self._known_pipelines.get(key)
        if known is None or stage not in known.stage_keys:
            known = self._known_pipelines[key] = self.pipeline(key)
        return known

    def ensure_default_pipelines(self, meta: Meta | None = None) -> None:
        """Define the standard sales, marketing and service pipelines once."""
        for key, (name, stages) in DEFAULT_PIPELINES.items():
            if pipeline_id(key) not in self.repository:
                try:
                    self.save_new(Pipeline.define(key, name, stages, meta or Meta()))
                except ConcurrencyConflict:
                    pass  # another process defined it first: same id, same content

    @handles(DefinePipeline)
    def define_pipeline(self, command: DefinePipeline, meta: Meta) -> UUID:
        if pipeline_id(command.key) in self.repository:
            raise DomainError(f"pipeline {command.key!r} is already defined")
        pipeline = Pipeline.define(command.key, command.name, [(s.key, s.label) for s in command.stages], meta,
                                   {s.key: s.remind_after_days for s in command.stages if s.remind_after_days})
        for stage in command.stages:  # forecast defaults given with the definition: one event each, saved with it
            if stage.probability is not None or stage.forecast_category is not None:
                positional = pipeline.stage_forecast(stage.key)
                pipeline.set_stage_forecast(stage.key, _given(stage.probability, positional.probability),
                                            _given(stage.forecast_category, positional.category), meta)
        self.save_new(pipeline)
        return pipeline.id

    @handles(RenameStage)
    def rename_stage(self, command: RenameStage, meta: Meta) -> int:
        return self._change(command, lambda pipeline: pipeline.rename_stage(command.stage, command.label, meta))

    @handles(InsertStage)
    def insert_stage(self, command: InsertStage, meta: Meta) -> int:
        return self._change(command, lambda pipeline: pipeline.insert_stage(command.stage, command.label,
                                                                           command.after, meta))

    @handles(SetStageReminders)
    def set_stage_reminders(self, command: SetStageReminders, meta: Meta) -> int:
        return self._change(command, lambda pipeline: pipeline.set_stage_reminders(command.stage,
                                                                                   command.remind_after_days, meta))

    @handles(SetStageForecast)
    def set_stage_forecast(self, command: SetStageForecast, meta: Meta) -> int:
        return self._change(command, lambda pipeline: pipeline.set_stage_forecast(
            command.stage, command.probability, command.forecast_category, meta))

    # --- targets and teams (forecasting) --------------------------------------------------------

    @handles(SetTarget)
    def set_target(self, command: SetTarget, meta: Meta) -> int:
        """Set a target, new or not: the new version."""
        c = command
        return self._set(c, lambda: Target.set(c.scope, c.name, c.period, c.amount, c.currency, c.reason, meta),
                         lambda target: target.change(c.amount, c.currency, c.reason, meta))

    @handles(AssignTeam)
    def assign_team(self, command: AssignTeam, meta: Meta) -> int:
        """Put an owner in a team (first time or a move): the new version."""
        c = command
        return self._set(c, lambda: OwnerTeam.assign(c.owner, c.team, c.reason, meta),
                         lambda membership: membership.move(c.team, c.reason, meta))

    def _set(self, command: Change, create: Callable[[], A], change: Callable[[A], None]) -> int:
        """Create the command's aggregate if the log has none yet, else change it (at the version the caller
        saw, when given; 0 for none yet); returns the new version."""
        try:
            aggregate = self._load_for_change(command.aggregate, command.aggregate_id)
        except NotFound:
            _expect_new(command.expected_version)
            aggregate = create()
        else:
            _expect_version(aggregate, command.expected_version)
            change(aggregate)
        self.save_new(aggregate)
        return aggregate.version

    # --- vocabularies -------------------------------------------------------------------------

    def vocabulary(self, kind: str) -> Vocabulary | None:
        """Vocabulary `kind` as defined in the log (None: never defined, its defaults apply)."""
        try:
            return self.get(Vocabulary, vocabulary_id(kind))
        except NotFound:
            return None

    def vocabularies(self, fresh: bool = False) -> Vocabularies:
        """The terms of every kind: this process's copy, read again when `fresh` or older than the TTL."""
        cached = self._vocabularies
        if fresh or cached is None or time.monotonic() - cached[0] > VOCABULARY_TTL_SECONDS:
            read_at = time.monotonic()
            defined = {kind: v.terms for kind in KINDS if (v := self.vocabulary(kind)) is not None}
            cached = self._vocabularies = (read_at, Vocabularies(defined))
        return cached[1]

    def _checked(self, make: Callable[[Vocabularies], T]) -> T:
        """`make(vocabularies)`; if refused with this process's copy, once more with the log's (a value may
        have been added since). Domain methods check before they record, so a refused try changed nothing."""
        before = self._vocabularies
        try:
            return make(self.vocabularies())
        except DomainError:
            if self._vocabularies is not before:
                raise  # read just now: reading again would say the same
            return make(self.vocabularies(fresh=True))

    def _change_vocabulary(self, command: VocabularyChange, meta: Meta, apply: Callable[[Vocabulary], None],
                           define: Callable[[], Vocabulary] | None = None) -> int:
        """Change a vocabulary; one never defined is first recorded with its defaults (or made by `define`)."""
        vocabulary = self.vocabulary(command.kind)
        if vocabulary is None and command.expected_version:
            raise ConcurrencyConflict(f"vocabulary {command.kind!r} has its defaults (version 0), not the expected "
                                      f"version {command.expected_version}")
        if vocabulary is not None:
            _expect_version(vocabulary, command.expected_version)
            apply(vocabulary)
        elif define is not None:
            vocabulary = define()
        else:
            vocabulary = Vocabulary.from_defaults(command.kind, meta)
            apply(vocabulary)
        self.save_new(vocabulary)
        self._vocabularies = None  # this process sees its own change at once
        return vocabulary.version

    @handles(SetVocabulary)
    def set_vocabulary(self, command: SetVocabulary, meta: Meta) -> int:
        c = command
        return self._change_vocabulary(c, meta, lambda v: v.replace(c.values, c.open, meta),
                                       define=lambda: Vocabulary.define(c.kind, c.values, c.open, meta))

    @handles(AddVocabularyValue)
    def add_vocabulary_value(self, command: AddVocabularyValue, meta: Meta) -> int:
        return self._change_vocabulary(command, meta, lambda v: v.add(command.value, meta))

    @handles(RetireVocabularyValue)
    def retire_vocabulary_value(self, command: RetireVocabularyValue, meta: Meta) -> int:
        return self._change_vocabulary(command, meta, lambda v: v.retire(command.value, meta))

    # --- customers ----------------------------------------------------------------------------

    @handles(RegisterCustomer)
    def register_customer(self, command: RegisterCustomer, meta: Meta) -> UUID:
        c = command
        customer = self._checked(lambda vocabularies: Customer.register(
            c.name, c.company, c.region, c.industry, c.channel, meta, email=c.email, phone=c.phone,
            campaign_id=c.campaign_id, external_id=c.kept_external_id(), id=c.id, vocabularies=vocabularies))
        self.save_new_record(customer)
        return customer.id

    @handles(ChangeContactDetails)
    def change_contact_details(self, command: ChangeContactDetails, meta: Meta) -> int:
        return self._change(command, lambda customer: customer.change_contact_details(command.email, command.phone,
                                                                                     meta))

    @handles(LogTouch)
    def log_touch(self, command: LogTouch, meta: Meta) -> int:
        c = command
        return self._change(c, lambda customer: self._checked(
            lambda vocabularies: customer.log_touch(c.channel, c.direction, c.summary, meta, vocabularies)))

    @handles(AddTag)
    def add_tag(self, command: AddTag, meta: Meta) -> int:
        return self._change(command, lambda customer: customer.add_tag(command.tag, meta))

    @handles(RemoveTag)
    def remove_tag(self, command: RemoveTag, meta: Meta) -> int:
        return self._change(command, lambda customer: customer.remove_tag(command.tag, meta))

    @handles(ChangeCustomerProperties)
    def change_customer_properties(self, command: ChangeCustomerProperties, meta: Meta) -> int:
        return self._change(command, lambda customer: customer.change_properties(command.changes, meta))

    @handles(ChangeConsent)
    def change_consent(self, command: ChangeConsent, meta: Meta) -> int:
        return self._change(command, lambda customer: customer.change_consent(command.marketing, meta))

    @handles(ForgetCustomer)
    def forget_customer(self, command: ForgetCustomer, meta: Meta) -> int:
        """Erase a customer's personal data everywhere: destroy the keys of the customer, of the leads
        converted into them and of every record bound to them (deals, tickets), then record that they were
        forgotten. Funnels and counts stay intact."""
        customer_id = command.customer_id
        leads = self.leads_converted_into(customer_id)

        def forget(customer: Customer) -> None:
            customer.forget(meta)  # refuses a second time, before anything is destroyed
            self.keys.destroy([str(customer_id), *(str(lead) for lead in leads)])

        return self._change(command, forget)

    def leads_converted_into(self, customer_id: UUID) -> list[UUID]:
        """The leads of this log whose conversion made this customer (one read of its conversions)."""
        return [e.originator_id for _, e in self.read_log(topics=[get_topic(Lead.Converted)])
                if e.customer_id == customer_id]

    # --- leads --------------------------------------------------------------------------------

    @handles(CaptureLead)
    def capture_lead(self, command: CaptureLead, meta: Meta) -> UUID:
        c = command
        campaign = self.get(Campaign, c.campaign_id) if c.variant and c.campaign_id else None  # its variants
        lead = self._checked(lambda vocabularies: Lead.capture(
            c.name, c.company, c.region, c.industry, c.channel, meta, contact=c.contact, campaign_id=c.campaign_id,
            external_id=c.kept_external_id(), id=c.id, vocabularies=vocabularies, variant=c.variant,
            campaign=campaign))
        self.save_new_record(lead)
        return lead.id

    @handles(AssignLead)
    def assign_lead(self, command: AssignLead, meta: Meta) -> int:
        return self._change(command, lambda lead: lead.assign(command.owner, command.rule, meta))

    @handles(ChangeLeadProperties)
    def change_lead_properties(self, command: ChangeLeadProperties, meta: Meta) -> int:
        return self._change(command, lambda lead: lead.change_properties(command.changes, meta))

    @handles(ContactLead)
    def contact_lead(self, command: ContactLead, meta: Meta) -> int:
        return self._change(command, lambda lead: self._checked(
            lambda vocabularies: lead.contact(command.channel, command.summary, meta, vocabularies)))

    @handles(QualifyLead)
    def qualify_lead(self, command: QualifyLead, meta: Meta) -> int:
        return self._change(command, lambda lead: lead.qualify(command.note, meta))

    @handles(DisqualifyLead)
    def disqualify_lead(self, command: DisqualifyLead, meta: Meta) -> int:
        return self._change(command, lambda lead: lead.disqualify(command.reason, meta))

    @handles(ConvertLead)
    def convert_lead(self, command: ConvertLead, meta: Meta) -> tuple[UUID, UUID]:
        """Turn a qualified lead into a customer and an open sales deal, atomically. The lead's properties
        (product, team, …) pass to the deal, which carries its opportunity on, as the deal's first change."""
        c, lead = command, self.get(Lead, command.lead_id)
        customer = Customer.register(lead.name or lead.company or UNKNOWN, lead.company, lead.region, lead.industry,
                                     lead.channel, meta, email=c.email, phone=c.phone, campaign_id=lead.campaign_id,
                                     vocabularies=HISTORIC, partition=partition_of(lead.id))  # the deal follows it
        deal = Deal.open(self.pipeline("sales"), customer.id, c.deal_title, c.amount, c.currency,
                         lead.owner or meta.actor, meta, expected_close=c.expected_close,
                         lead_id=lead.id, campaign_id=lead.campaign_id)
        if lead.properties:
            deal.change_properties(lead.properties, meta)
        lead.convert(customer.id, deal.id, meta)
        self.save_new(lead, customer, deal)
        return customer.id, deal.id

    # --- deals --------------------------------------------------------------------------------

    @handles(OpenDeal)
    def open_deal(self, command: OpenDeal, meta: Meta) -> UUID:
        c = command
        self.get(Customer, c.customer_id)
        deal = Deal.open(self.pipeline(c.pipeline), c.customer_id, c.title, c.amount, c.currency,
                         c.owner or meta.actor, meta, stage=c.stage, expected_close=c.expected_close,
                         lead_id=c.lead_id, campaign_id=c.campaign_id, external_id=c.kept_external_id(), id=c.id)
        self.save_new_record(deal)
        return deal.id

    @handles(ChangeStage)
    def change_stage(self, command: ChangeStage, meta: Meta) -> int:
        def apply(deal: Deal) -> None:
            pipeline = self.pipeline_with_stage(deal.pipeline, command.stage)
            deal.change_stage(pipeline, command.stage, command.reason, meta)
        return self._change(command, apply)

    @handles(ChangeAmount)
    def change_amount(self, command: ChangeAmount, meta: Meta) -> int:
        return self._change(command, lambda deal: deal.change_amount(command.amount, meta))

    @handles(ChangeOwner)
    def change_owner(self, command: ChangeOwner, meta: Meta) -> int:
        return self._change(command, lambda deal: deal.change_owner(command.owner, meta))

    @handles(ChangeDealProperties)
    def change_deal_properties(self, command: ChangeDealProperties, meta: Meta) -> int:
        return self._change(command, lambda deal: deal.change_properties(command.changes, meta))

    @handles(ChangeExpectedClose)
    def change_expected_close(self, command: ChangeExpectedClose, meta: Meta) -> int:
        return self._change(command, lambda deal: deal.change_expected_close(command.expected_close, command.reason,
                                                                             meta))

    @handles(ChangeProbability)
    def change_probability(self, command: ChangeProbability, meta: Meta) -> int:
        return self._change(command, lambda deal: deal.change_probability(command.probability, command.reason, meta))

    @handles(ChangeForecastCategory)
    def change_forecast_category(self, command: ChangeForecastCategory, meta: Meta) -> int:
        return self._change(command, lambda deal: deal.change_forecast_category(command.forecast_category,
                                                                                command.reason, meta))

    @handles(WinDeal)
    def win_deal(self, command: WinDeal, meta: Meta) -> int:
        return self._change(command, lambda deal: deal.win(meta, command.note))

    @handles(LoseDeal)
    def lose_deal(self, command: LoseDeal, meta: Meta) -> int:
        return self._change(command, lambda deal: self._checked(
            lambda vocabularies: deal.lose(command.reason, meta, command.competitor, vocabularies)))

    @handles(ReopenDeal)
    def reopen_deal(self, command: ReopenDeal, meta: Meta) -> int:
        def apply(deal: Deal) -> None:
            deal.reopen(self.pipeline(deal.pipeline), command.reason, meta, command.stage)
        return self._change(command, apply)

    # --- campaigns ----------------------------------------------------------------------------

    @handles(PlanCampaign)
    def plan_campaign(self, command: PlanCampaign, meta: Meta) -> UUID:
        c = command
        campaign = self._checked(lambda vocabularies: Campaign.plan(
            c.name, c.channel, c.budget, c.currency, meta, external_id=c.kept_external_id(), id=c.id,
            vocabularies=vocabularies))
        self.save_new_record(campaign)
        return campaign.id

    @handles(LaunchCampaign)
    def launch_campaign(self, command: LaunchCampaign, meta: Meta) -> int:
        return self._change(command, lambda campaign: campaign.launch(meta))

    @handles(RecordCost)
    def record_cost(self, command: RecordCost, meta: Meta) -> int:
        return self._change(command, lambda campaign: campaign.record_cost(command.amount, meta, command.note))

    @handles(RecordResponse)
    def record_response(self, command: RecordResponse, meta: Meta) -> int:
        """Record the response on the respondent's stream — the lead's when one is named (a lead and the
        customer it was converted into: the lead, whose conversion leads to the customer; the customer's
        partition is the lead's), else the customer's —, checked against the campaign but never written to it,
        so that a big campaign's responses do not conflict. Returns the campaign's version, unchanged."""
        c = command
        campaign = self.get(Campaign, c.campaign_id)
        _expect_version(campaign, c.expected_version)
        require_respondent(c.customer_id, c.lead_id)
        respondent: Lead | Customer
        if c.lead_id is not None:
            respondent = self._load_for_change(Lead, c.lead_id)
            require_converted_into(respondent, c.customer_id)
        else:
            respondent = self._load_for_change(Customer, c.customer_id)  # type: ignore[arg-type]
        respondent.respond_to_campaign(campaign, c.kind, meta, c.variant)
        self.save_new(respondent)
        return campaign.version

    @handles(CloseCampaign)
    def close_campaign(self, command: CloseCampaign, meta: Meta) -> int:
        return self._change(command, lambda campaign: campaign.close(meta))

    @handles(DefineVariants)
    def define_variants(self, command: DefineVariants, meta: Meta) -> int:
        return self._change(command, lambda campaign: campaign.define_variants(command.variants, meta,
                                                                               command.reason))

    @handles(RecordExposures)
    def record_exposures(self, command: RecordExposures, meta: Meta) -> int:
        return self._change(command, lambda campaign: campaign.record_exposures(command.variant, command.count,
                                                                                meta, command.note))

    @handles(StopVariant)
    def stop_variant(self, command: StopVariant, meta: Meta) -> int:
        return self._change(command, lambda campaign: campaign.stop_variant(command.variant, command.reason, meta))

    @handles(DeclareWinner)
    def declare_winner(self, command: DeclareWinner, meta: Meta) -> int:
        return self._change(command, lambda campaign: campaign.declare_winner(command.variant, command.reason,
                                                                              meta))

    # --- exchange rates -----------------------------------------------------------------------

    @handles(RecordExchangeRate)
    def record_exchange_rate(self, command: RecordExchangeRate, meta: Meta) -> tuple[UUID, str]:
        """Record a pair's rate for a date: "recorded" (new), "corrected" (another figure) or "unchanged"
        (the same figure again: importing a file twice writes nothing)."""
        rate, outcome = self._exchange_rate(command, meta)
        if outcome != "unchanged":
            self.save_new(rate)
        return rate.id, outcome

    def record_exchange_rates(self, commands: Sequence[RecordExchangeRate], meta: Meta) -> list[str]:
        """Record many rates (a file's) in one transaction: all or none are written, and one save instead of
        one per rate (the ECB's ≈ 200k rates took ≈ 9 min one by one). Each outcome as `record_exchange_rate`'s;
        the commands must name distinct (currency, quote, date)s."""
        outcomes = [self._exchange_rate(command, meta) for command in commands]
        changed = [rate for rate, outcome in outcomes if outcome != "unchanged"]
        if changed:
            self.save_new(*changed)
        return [outcome for _, outcome in outcomes]

    def _exchange_rate(self, command: RecordExchangeRate, meta: Meta) -> tuple[ExchangeRate, str]:
        """The rate a command asks for, with its new event pending unless unchanged, and the outcome."""
        c, quote = command, command.quote or self.reporting_currency
        try:
            known = self.get(ExchangeRate, rate_id(c.currency, quote, c.valid_from))
        except NotFound:
            return ExchangeRate.quote_rate(c.currency, quote, c.rate, c.valid_from, c.source, meta), "recorded"
        if known.rate == require_rate(c.rate):
            return known, "unchanged"
        known.correct(c.rate, c.source, meta)
        return known, "corrected"

    # --- tickets ------------------------------------------------------------------------------

    @handles(OpenTicket)
    def open_ticket(self, command: OpenTicket, meta: Meta) -> UUID:
        c = command
        self.get(Customer, c.customer_id)
        ticket = self._checked(lambda vocabularies: Ticket.open(
            c.customer_id, c.subject, c.priority, c.channel, meta, external_id=c.kept_external_id(), id=c.id,
            vocabularies=vocabularies))
        self.save_new_record(ticket)
        return ticket.id

    @handles(AssignTicket)
    def assign_ticket(self, command: AssignTicket, meta: Meta) -> int:
        return self._change(command, lambda ticket: ticket.assign(command.assignee, meta))

    @handles(ChangeTicketStatus)
    def change_ticket_status(self, command: ChangeTicketStatus, meta: Meta) -> int:
        return self._change(command, lambda ticket: ticket.change_status(command.status, meta))

    @handles(RecordCustomerReply)
    def record_customer_reply(self, command: RecordCustomerReply, meta: Meta) -> int:
        return self._change(command, lambda ticket: ticket.customer_replied(command.message, meta))

    @handles(ResolveTicket)
    def resolve_ticket(self, command: ResolveTicket, meta: Meta) -> int:
        return self._change(command, lambda ticket: ticket.resolve(command.resolution, meta))

    @handles(RateTicket)
    def rate_ticket(self, command: RateTicket, meta: Meta) -> int:
        return self._change(command, lambda ticket: ticket.rate(command.score, command.comment, meta))

    @handles(ReopenTicket)
    def reopen_ticket(self, command: ReopenTicket, meta: Meta) -> int:
        return self._change(command, lambda ticket: ticket.reopen(command.reason, meta))

    @handles(CloseTicket)
    def close_ticket(self, command: CloseTicket, meta: Meta) -> int:
        return self._change(command, lambda ticket: ticket.close(meta))


def ids_of_external_id(kind: type, made: UUID) -> list[UUID]:
    """The ids a record with this external id may already have: `made` (the one just derived); for a deal or a
    ticket, placed in its customer's partition, also its source id's UUID in every other partition — another
    customer's, or its own bits (imported before home partitions) —: 64 ids looked up in one query, only when a
    deal or ticket is created with an external id."""
    if kind not in (Deal, Ticket):
        return [made]
    return [made, *(in_partition(p, made) for p in range(PARTITIONS) if p != partition_of(made))]


def _expect_version(aggregate: CrmAggregate, expected_version: int | None) -> None:
    """Refuse a change to an aggregate that moved on since the caller saw it at `expected_version`."""
    if expected_version is not None and aggregate.version != expected_version:
        raise ConcurrencyConflict(f"{type(aggregate).__name__.lower()} {aggregate.id} is at version "
                                  f"{aggregate.version}, not the expected {expected_version}")


def _expect_new(expected_version: int | None) -> None:
    """A set-or-create command meeting nothing yet: only version 0 (or none) was seen."""
    if expected_version not in (None, 0):
        raise ConcurrencyConflict(f"expected version {expected_version}, but nothing is set yet")


def _given(value: T | None, default: T) -> T:
    return default if value is None else value
