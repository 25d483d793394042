"""The CRM application service: every command of the domain, saved atomically to one event log.

It orchestrates (load, call the aggregate, save) and holds no business rule of its own.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, JSONTranscoder, Mapper
from eventsourcing.utils import get_topic

from domain.base import CrmAggregate, Meta
from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.errors import DomainError
from domain.lead import Lead
from domain.pipeline import DEFAULT_PIPELINES, Pipeline, pipeline_id
from domain.ticket import Ticket
from services.aggregate_cache import AggregateCache
from services.command_receipts import Receipt, now_micros
from services.storage.event_recorder import ReceiptPOPORecorder
from services.storage.log_protection import LogNotMigrated, check_event_log, check_log_version, protect_event_log
from services.keys.key_store import KeyStore
from services.keys.sealing import PersonalDataMapper, subjects_of_aggregates
from services.storage.read_model_store import ReadModelStore
from services.storage.schema_lock import advisory_lock
from services.settings import Database, database_from_environment
from services.storage.transcodings import DateAsISO

A = TypeVar("A", bound=CrmAggregate)


class NotFound(LookupError):
    """No aggregate of the asked type has that id."""


class ConcurrencyConflict(RuntimeError):
    """Someone else changed the aggregate first (stale expected version or a concurrent save)."""


def _replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """eventsourcing's `project_aggregate` without its per-event `isinstance` check against a runtime
    Protocol, which cost more than applying the event (every event of the log has `mutate`)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


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

    def _check_version(self, fingerprint: str) -> None:
        try:
            check_log_version(self.recorder, fingerprint)
        except LogNotMigrated:
            self.close()  # the pools opened so far
            raise

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

    def _write(self, aggregates: Sequence[CrmAggregate], receipt: Receipt | None) -> None:
        self.keys.ensure(subjects_of_aggregates(aggregates))  # one round trip
        changed = [a for a in aggregates if a.version > len(a.pending_events)]  # loaded, not created here
        try:
            self.save(*aggregates, **({} if receipt is None else {"receipt": receipt}))
        except IntegrityError as error:
            raise ConcurrencyConflict(f"conflicting write: {error}") from None
        for aggregate in changed:
            self._recent.keep(aggregate)  # only after the save succeeded: a refused one is never reused

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

    def _change(
        self,
        aggregate_type: type[A],
        aggregate_id: UUID,
        command: Callable[[A], None],
        expected_version: int | None = None,
    ) -> int:
        """Load, check the caller saw the latest version, apply `command`, save. Returns the new version."""
        aggregate = self._load_for_change(aggregate_type, aggregate_id)
        if expected_version is not None and aggregate.version != expected_version:
            raise ConcurrencyConflict(
                f"{aggregate_type.__name__.lower()} {aggregate_id} is at version {aggregate.version}, "
                f"not the expected {expected_version}"
            )
        command(aggregate)
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

    def read_log(self, topics: Sequence[str] = (), batch: int = 2000) -> Iterator[tuple[int, Any]]:
        """All events in notification order as (notification id, domain event)."""
        start = 1
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

    def define_pipeline(self, key: str, name: str, stages: list[tuple[str, str]], meta: Meta) -> UUID:
        if pipeline_id(key) in self.repository:
            raise DomainError(f"pipeline {key!r} is already defined")
        pipeline = Pipeline.define(key, name, stages, meta)
        self.save_new(pipeline)
        return pipeline.id

    def rename_stage(self, key: str, stage: str, label: str, meta: Meta,
                     expected_version: int | None = None) -> int:
        return self._change(Pipeline, pipeline_id(key), lambda p: p.rename_stage(stage, label, meta), expected_version)

    def insert_stage(self, key: str, stage: str, label: str, after: str | None, meta: Meta,
                     expected_version: int | None = None) -> int:
        return self._change(Pipeline, pipeline_id(key), lambda p: p.insert_stage(stage, label, after, meta),
                            expected_version)

    # --- customers ----------------------------------------------------------------------------

    def register_customer(self, name: str, company: str, region: str, industry: str, channel: str,
                          meta: Meta, **details: Any) -> UUID:
        customer = Customer.register(name, company, region, industry, channel, meta, **details)
        self.save_new(customer)
        return customer.id

    def change_contact_details(self, customer_id: UUID, email: str, phone: str, meta: Meta,
                               expected_version: int | None = None) -> int:
        return self._change(Customer, customer_id, lambda c: c.change_contact_details(email, phone, meta),
                            expected_version)

    def log_touch(self, customer_id: UUID, channel: str, direction: str, summary: str, meta: Meta,
                  expected_version: int | None = None) -> int:
        return self._change(Customer, customer_id, lambda c: c.log_touch(channel, direction, summary, meta),
                            expected_version)

    def add_tag(self, customer_id: UUID, tag: str, meta: Meta,
                expected_version: int | None = None) -> int:
        return self._change(Customer, customer_id, lambda c: c.add_tag(tag, meta), expected_version)

    def remove_tag(self, customer_id: UUID, tag: str, meta: Meta,
                   expected_version: int | None = None) -> int:
        return self._change(Customer, customer_id, lambda c: c.remove_tag(tag, meta), expected_version)

    def change_consent(self, customer_id: UUID, marketing: bool, meta: Meta,
                       expected_version: int | None = None) -> int:
        return self._change(Customer, customer_id, lambda c: c.change_consent(marketing, meta), expected_version)

    def forget_customer(self, customer_id: UUID, meta: Meta,
                        expected_version: int | None = None) -> int:
        """Erase a customer's personal data everywhere: destroy the keys of the customer, of the leads
        converted into them and of every record bound to them (deals, tickets), then record that they were
        forgotten. Funnels and counts stay intact."""
        leads = [e.originator_id for _, e in self.read_log(topics=[get_topic(Lead.Converted)])
                 if e.customer_id == customer_id]

        def forget(customer: Customer) -> None:
            customer.forget(meta)  # refuses a second time, before anything is destroyed
            self.keys.destroy([str(customer_id), *(str(lead) for lead in leads)])

        return self._change(Customer, customer_id, forget, expected_version)

    # --- leads --------------------------------------------------------------------------------

    def capture_lead(self, name: str, company: str, region: str, industry: str, channel: str,
                     meta: Meta, **details: Any) -> UUID:
        lead = Lead.capture(name, company, region, industry, channel, meta, **details)
        self.save_new(lead)
        return lead.id

    def assign_lead(self, lead_id: UUID, owner: str, rule: str, meta: Meta,
                    expected_version: int | None = None) -> int:
        return self._change(Lead, lead_id, lambda lead: lead.assign(owner, rule, meta), expected_version)

    def contact_lead(self, lead_id: UUID, channel: str, summary: str, meta: Meta,
                     expected_version: int | None = None) -> int:
        return self._change(Lead, lead_id, lambda lead: lead.contact(channel, summary, meta), expected_version)

    def qualify_lead(self, lead_id: UUID, note: str, meta: Meta,
                     expected_version: int | None = None) -> int:
        return self._change(Lead, lead_id, lambda lead: lead.qualify(note, meta), expected_version)

    def disqualify_lead(self, lead_id: UUID, reason: str, meta: Meta,
                        expected_version: int | None = None) -> int:
        return self._change(Lead, lead_id, lambda lead: lead.disqualify(reason, meta), expected_version)

    def convert_lead(self, lead_id: UUID, deal_title: str, amount: Decimal | int | str, currency: str,
                     meta: Meta, *, email: str = "", phone: str = "",
                     expected_close: date | None = None) -> tuple[UUID, UUID]:
        """Turn a qualified lead into a customer and an open sales deal, atomically."""
        lead = self.get(Lead, lead_id)
        customer = Customer.register(lead.name, lead.company, lead.region, lead.industry, lead.channel, meta,
                                     email=email, phone=phone, campaign_id=lead.campaign_id)
        deal = Deal.open(self.pipeline("sales"), customer.id, deal_title, amount, currency,
                         lead.owner or meta.actor, meta, expected_close=expected_close,
                         lead_id=lead.id, campaign_id=lead.campaign_id)
        lead.convert(customer.id, deal.id, meta)
        self.save_new(lead, customer, deal)
        return customer.id, deal.id

    # --- deals --------------------------------------------------------------------------------

    def open_deal(self, pipeline: str, customer_id: UUID, title: str, amount: Decimal | int | str,
                  currency: str, owner: str, meta: Meta, **details: Any) -> UUID:
        self.get(Customer, customer_id)
        deal = Deal.open(self.pipeline(pipeline), customer_id, title, amount, currency, owner, meta, **details)
        self.save_new(deal)
        return deal.id

    def change_stage(self, deal_id: UUID, to_stage: str, reason: str, meta: Meta,
                     expected_version: int | None = None) -> int:
        def command(deal: Deal) -> None:
            deal.change_stage(self.pipeline_with_stage(deal.pipeline, to_stage), to_stage, reason, meta)
        return self._change(Deal, deal_id, command, expected_version)

    def change_amount(self, deal_id: UUID, amount: Decimal | int | str, meta: Meta,
                      expected_version: int | None = None) -> int:
        return self._change(Deal, deal_id, lambda d: d.change_amount(amount, meta), expected_version)

    def change_owner(self, deal_id: UUID, owner: str, meta: Meta, expected_version: int | None = None) -> int:
        return self._change(Deal, deal_id, lambda d: d.change_owner(owner, meta), expected_version)

    def win_deal(self, deal_id: UUID, meta: Meta, note: str = "", expected_version: int | None = None) -> int:
        return self._change(Deal, deal_id, lambda d: d.win(meta, note), expected_version)

    def lose_deal(self, deal_id: UUID, reason: str, meta: Meta, competitor: str = "",
                  expected_version: int | None = None) -> int:
        return self._change(Deal, deal_id, lambda d: d.lose(reason, meta, competitor), expected_version)

    def reopen_deal(self, deal_id: UUID, reason: str, meta: Meta, stage: str | None = None,
                    expected_version: int | None = None) -> int:
        def command(deal: Deal) -> None:
            deal.reopen(self.pipeline(deal.pipeline), reason, meta, stage)
        return self._change(Deal, deal_id, command, expected_version)

    # --- campaigns ----------------------------------------------------------------------------

    def plan_campaign(self, name: str, channel: str, budget: Decimal | int | str, currency: str,
                      meta: Meta) -> UUID:
        campaign = Campaign.plan(name, channel, budget, currency, meta)
        self.save_new(campaign)
        return campaign.id

    def launch_campaign(self, campaign_id: UUID, meta: Meta,
                        expected_version: int | None = None) -> int:
        return self._change(Campaign, campaign_id, lambda c: c.launch(meta), expected_version)

    def record_cost(self, campaign_id: UUID, amount: Decimal | int | str, meta: Meta, note: str = "",
                    expected_version: int | None = None) -> int:
        return self._change(Campaign, campaign_id, lambda c: c.record_cost(amount, meta, note), expected_version)

    def record_response(self, campaign_id: UUID, kind: str, meta: Meta, *, customer_id: UUID | None = None,
                        lead_id: UUID | None = None, expected_version: int | None = None) -> int:
        return self._change(Campaign, campaign_id,
                            lambda c: c.record_response(kind, meta, customer_id=customer_id, lead_id=lead_id),
                            expected_version)

    def close_campaign(self, campaign_id: UUID, meta: Meta,
                       expected_version: int | None = None) -> int:
        return self._change(Campaign, campaign_id, lambda c: c.close(meta), expected_version)

    # --- tickets ------------------------------------------------------------------------------

    def open_ticket(self, customer_id: UUID, subject: str, priority: str, channel: str, meta: Meta) -> UUID:
        self.get(Customer, customer_id)
        ticket = Ticket.open(customer_id, subject, priority, channel, meta, id=uuid4())
        self.save_new(ticket)
        return ticket.id

    def assign_ticket(self, ticket_id: UUID, assignee: str, meta: Meta,
                      expected_version: int | None = None) -> int:
        return self._change(Ticket, ticket_id, lambda t: t.assign(assignee, meta), expected_version)

    def change_ticket_status(self, ticket_id: UUID, status: str, meta: Meta,
                             expected_version: int | None = None) -> int:
        return self._change(Ticket, ticket_id, lambda t: t.change_status(status, meta), expected_version)

    def record_customer_reply(self, ticket_id: UUID, message: str, meta: Meta,
                              expected_version: int | None = None) -> int:
        return self._change(Ticket, ticket_id, lambda t: t.customer_replied(message, meta), expected_version)

    def resolve_ticket(self, ticket_id: UUID, resolution: str, meta: Meta,
                       expected_version: int | None = None) -> int:
        return self._change(Ticket, ticket_id, lambda t: t.resolve(resolution, meta), expected_version)

    def rate_ticket(self, ticket_id: UUID, score: int, comment: str, meta: Meta,
                    expected_version: int | None = None) -> int:
        return self._change(Ticket, ticket_id, lambda t: t.rate(score, comment, meta), expected_version)

    def reopen_ticket(self, ticket_id: UUID, reason: str, meta: Meta,
                      expected_version: int | None = None) -> int:
        return self._change(Ticket, ticket_id, lambda t: t.reopen(reason, meta), expected_version)

    def close_ticket(self, ticket_id: UUID, meta: Meta,
                     expected_version: int | None = None) -> int:
        return self._change(Ticket, ticket_id, lambda t: t.close(meta), expected_version)
