"""The second half of `crm import`'s checks, in file order in the importing process: versions, creation
first, business time in order, then each event's lifecycle rule (`customer_lifecycle` …
`pipeline_lifecycle`) on its aggregate's `Tracked` state, and the references still waiting.

Aggregates the log already holds are loaded once (`log_loader`) into a `Tracked`; no domain event is built.
The first refusal in file order is kept (`HistoryRules.failure`) with its line number and message.
"""

from __future__ import annotations

import re

from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.base import CrmAggregate, require_in_order
from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.errors import DomainError
from domain.exchange_rates import ExchangeRate
from domain.lead import Lead
from domain.pipeline import Pipeline
from domain.reminder_rules import Reminder
from domain.segment_change_rules import SegmentChange
from domain.targets import OwnerTeam, Target
from domain.ticket import Ticket
from domain.vocabulary import Terms, Vocabulary
from services.application import ids_of_external_id
from services.history.event_lines import SCHEMAS
from services.history.rules import (campaign_lifecycle, customer_lifecycle, deal_lifecycle, exchange_rate_lifecycle,
                                    lead_lifecycle, pipeline_lifecycle, reminder_lifecycle, segment_change_lifecycle,
                                    target_lifecycle, ticket_lifecycle, vocabulary_lifecycle)
from services.history.rules.facts import TERMS, Facts, instant_of, line_name, vocabulary_key
from services.history.rules.lifecycle import Rule
from services.history.rules.refusal import Refusal
from services.history.rules.tracked import Tracked, Waiting


def _kind_name(kind: type) -> str:
    """"segment change" for SegmentChange, "customer" for Customer."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", kind.__name__).lower()


class HistoryRules:
    """The in-order half: each aggregate's compact state, and the references still waiting."""

    def __init__(self, load: Callable[[UUID], CrmAggregate | None] | None,
                 held: Callable[[list[UUID]], UUID | None] | None = None) -> None:
        """`load` gives an aggregate the log already holds (None: not there); no `load`: the log is empty.
        `held` gives the first of some ids the log has (`log_holder`; None: the log is empty)."""
        self._load, self._held = load, held
        self._claims: dict[tuple[type, str], int] = {}  # (deal or ticket, external id) → the record's id
        self._state: dict[int, Tracked] = {}  # by the id's 128-bit integer: a third of the memory of UUID keys
        self._absent: set[int] = set()  # looked up in the log and not there
        self._waiting: dict[int, list[Waiting]] = {}
        self._line, self._facts = 0, ("", 0, 0, 0, ())  # the line being checked
        self.failure: tuple[int, str] | None = None  # (line, message): the first refusal so far
        self._terms: dict[str, Terms] = {}  # by kind, until a vocabulary line changes one (see `terms`)
        # By kind: the terms in force and the values they were seen to accept (a file repeats a handful of
        # channels, regions and industries: checking each again cost ≈ 0.7 µs a line, a third of the rules).
        self._accepted: dict[str, tuple[Terms, set[str]]] = {}
        # By event type (a str: its hash is kept, a TERMS tuple's is not), the tuples of values its lines ended
        # with that passed under the terms in force (emptied with `_terms`): one set look-up a line instead of
        # one pass of `_check_terms` per value.
        self._passed_terms: dict[str, set[tuple[Any, ...]]] = {}

    # -- looking aggregates up

    def _known(self, key: int) -> Tracked | None:
        tracked = self._state.get(key)
        if tracked is None and self._load is not None and key not in self._absent:
            aggregate = self._load(UUID(int=key))
            if aggregate is None:
                self._absent.add(key)
            else:
                tracked = self._state[key] = Tracked.of(aggregate)
        return tracked

    @property
    def subject(self) -> int:
        """The aggregate of the line being checked (its id as an int)."""
        return self._facts[1]

    @property
    def occurred(self) -> int:
        """The business time of the line being checked (µs since the epoch)."""
        return self._facts[3]

    def refer(self, field: str, kind: type, key: int | None, check: Callable[[Tracked], None] | None = None,
              target: str = "", check_field: str = "") -> None:
        """Id `key` must name an aggregate of `kind`, now or later in the file (then `check` it, if given,
        as a rule on `check_field`)."""
        if key is None:
            return
        tracked = self._state.get(key)
        if tracked is None and (self._load is None or (tracked := self._known(key)) is None):
            self._waiting.setdefault(key, []).append(
                Waiting(self._line, self._facts, field, kind, target, check, check_field or field))
            return
        if tracked.kind is not kind:
            self._require_kind(field, kind, tracked, target or str(UUID(int=key)))
        if check:
            try:
                check(tracked)
            except DomainError as error:
                raise Refusal(check_field or field, str(error)) from None

    def claim(self, kind: type, external_id: str) -> None:
        """A deal's or ticket's id is its source id's UUID placed in its customer's partition, so two of them
        with one external id no longer share an id (which made the second one a version conflict): refuse the
        second, of the file (kept here) or the log (its 64 possible ids: `ids_of_external_id`, one query)."""
        if not external_id:
            return
        subject = self.subject
        owner = self._claims.setdefault((kind, external_id), subject)
        if owner == subject and self._held is not None:
            found = self._held(ids_of_external_id(kind, UUID(int=subject)))
            owner = subject if found is None else found.int
        if owner != subject:
            raise Refusal("external_id", f"a {_kind_name(kind)} with external id {external_id} already exists "
                                         f"(id {UUID(int=owner)}, in the file or the log)")

    def terms(self, kind: str) -> Terms:
        """The values of vocabulary `kind` in force at the line being checked: as defined earlier in the file
        or in the log, else its defaults."""
        terms = self._terms.get(kind)
        if terms is None:  # one look-up per kind until a vocabulary line (else the import ran ≈ 5 % slower)
            tracked = self._known(vocabulary_key(kind))
            terms = tracked.terms if tracked is not None and tracked.terms is not None else Terms.default(kind)
            self._terms[kind] = terms
        return terms

    def _check_terms(self, terms: tuple[tuple[str, str, str], ...], values: tuple[Any, ...]) -> None:
        """Each value (the TERMS at the end of the line's values) against its vocabulary; `unknown` stands for
        a value the source lacks, so blank text is refused (a command would have stored `unknown`)."""
        for (field, kind, what), value in zip(terms, values[len(values) - len(terms):]):
            in_force = self.terms(kind)
            accepted = self._accepted.get(kind)
            if accepted is None or accepted[0] is not in_force:
                accepted = self._accepted[kind] = (in_force, set())
            if value in accepted[1]:
                continue  # whether a value passes depends only on it and the terms, not on `what` (the message)
            if not value.strip():
                raise Refusal(field, f"{what} must not be empty; write {'unknown'!r} when it is not known")
            try:
                in_force.check(value, what)
            except DomainError as error:
                raise Refusal(field, str(error)) from None
            accepted[1].add(value)

    @staticmethod
    def _require_kind(field: str, kind: type, tracked: Tracked, target: str) -> None:
        if tracked.kind is not kind:
            raise Refusal(field, f"{target} is a {_kind_name(tracked.kind)}, not a {_kind_name(kind)}")

    # -- one line

    @property
    def _prefix(self) -> str:
        """How messages name the line being checked."""
        return line_name(self._facts)

    def check(self, number: int, facts: Facts) -> None:
        """Check one line (its fields already passed `field_facts`); remembers the first refusal."""
        self._line, self._facts = number, facts
        if self.failure is not None:  # reading on only to resolve earlier lines' references
            self._created_only(facts)
            return
        try:
            self._check(facts)
        except Refusal as refusal:
            self._refused(number, facts, refusal)
        except ValueError as error:  # versions: the message is whole already
            self.refuse(number, str(error))

    def check_all(self, numbers: Iterable[int], found: Iterable[Facts]) -> None:
        """`check` each line of a chunk in order: the same, in one loop (the import's serial part, ≈ 0.3 µs a
        line less than a `check` call each)."""
        lines = zip(numbers, found)
        if self.failure is None:
            check = self._check
            for number, facts in lines:
                self._line, self._facts = number, facts
                try:
                    check(facts)
                except Refusal as refusal:
                    self._refused(number, facts, refusal)
                    break
                except ValueError as error:
                    self.refuse(number, str(error))
                    break
        for number, facts in lines:  # after a refusal: what is created still answers the lines waiting for it
            self.check(number, facts)

    def _refused(self, number: int, facts: Facts, refusal: Refusal) -> None:
        self.refuse(number, f"{self._prefix}, {refusal}", created=facts[1] if _EVENTS[facts[0]][2] else None)

    def refuse(self, number: int, message: str, created: int | None = None) -> None:
        """Refuse line `number` (unless an earlier line is refused already). A refused creation of aggregate
        `created` still answers the lines waiting for it: their fault is this line's."""
        if created is not None:
            self._waiting.pop(created, None)
        if self.failure is None or number < self.failure[0]:
            self.failure = (number, message)

    def reading_on(self) -> bool:
        """After a refusal: whether an earlier line still waits for a reference (so the file must be read on)."""
        return self.failure is not None and any(w.line < self.failure[0] for ws in self._waiting.values() for w in ws)

    def finish(self) -> tuple[int, str] | None:
        """At the end of the file: the first refusal, counting references that never came."""
        for key, waitings in self._waiting.items():
            for waiting in waitings:
                self.refuse(waiting.line, f"{line_name(waiting.facts)}, field {waiting.field!r}: no "
                                          f"{_kind_name(waiting.kind)} {waiting.target or UUID(int=key)} in the "
                                          "file or the log")
        return self.failure

    def _check(self, facts: Facts) -> None:
        # The import's serial part, once per line: the common case (versions, kind, order fine) tests each
        # only once, without a call (≈ 2.7 → 1.9 µs a line with `check_all` and `_passed_terms`).
        name, key, version, occurred, values = facts
        cls, kind, created, rule, terms = _EVENTS[name]
        tracked = self._state.get(key)
        if tracked is None and self._load is not None:
            tracked = self._known(key)
        if tracked is None:
            if version != 1:
                self._check_version(name, key, version, tracked)
            if not created:
                raise Refusal("type", f"the first event of a {_kind_name(kind)} must be "
                                      f"crm.{kind.__name__}.{_CREATED[kind].__name__}, not {name}")
            tracked = Tracked(kind)
        else:
            if version != tracked.version + 1:
                self._check_version(name, key, version, tracked)
            if tracked.kind is not kind:
                raise Refusal("type", f"{UUID(int=key)} is a {_kind_name(tracked.kind)}, not a {_kind_name(kind)}")
            if created:
                raise Refusal("type", f"{_kind_name(kind)} {UUID(int=key)} already exists")
            if tracked.last is not None and occurred < tracked.last:  # then the domain's rule says why
                try:
                    require_in_order(instant_of(tracked.last), instant_of(occurred), kind.__name__)
                except DomainError as error:
                    raise Refusal("occurred_at", str(error)) from None
        if terms:
            cut = len(values) - len(terms)
            ending = values[cut:]
            passed = self._passed_terms.get(name)
            if passed is None or ending not in passed:
                self._check_terms(terms, values)
                passed = self._passed_terms.setdefault(name, set())
                if len(passed) < _PASSED_TERMS:
                    passed.add(ending)
            values = values[:cut]
        if rule:
            try:
                rule(self, tracked, *values)
            except DomainError as error:
                raise Refusal("type", str(error)) from None
        tracked.version, tracked.last, tracked.logged = version, occurred, False
        if kind is Vocabulary:
            self._terms.clear()
            self._passed_terms.clear()
        if created:
            self._state[key] = tracked
            self._arrived(key, tracked)

    @staticmethod
    def _check_version(name: str, key: int, version: int, tracked: Tracked | None) -> None:
        last = tracked.version if tracked else 0
        if version != last + 1:
            where = "in the log" if tracked and tracked.logged else "earlier in the file"
            held = f"version {last} is the last {where}" if last else "it has no events yet"
            raise ValueError(f"{name} of {UUID(int=key)} has version {version}, "
                             f"but {held}: expected version {last + 1}")

    def _arrived(self, key: int, tracked: Tracked) -> None:
        """A creation: the lines waiting for this aggregate are checked now."""
        self._absent.discard(key)  # it is in `_state` from now on: ≈ 40 bytes less per aggregate
        for waiting in self._waiting.pop(key, ()):
            try:
                if tracked.kind is not waiting.kind:  # the message only then: formatting the id takes ≈ 2.5 µs
                    self._require_kind(waiting.field, waiting.kind, tracked, waiting.target or str(UUID(int=key)))
                if waiting.check:
                    try:
                        waiting.check(tracked)
                    except DomainError as error:
                        raise Refusal(waiting.check_field, str(error)) from None
            except Refusal as refusal:
                self.refuse(waiting.line, f"{line_name(waiting.facts)}, {refusal}")

    def _created_only(self, facts: Facts) -> None:
        """After a refusal: track only what aggregates exist (and pipelines' stages)."""
        name, key, _, _, values = facts
        cls, kind, created, _, _ = _EVENTS[name]
        if created and key not in self._state:
            tracked = Tracked(kind)
            if cls is Pipeline.Defined:
                tracked.pipeline, tracked.stages = values
            self._state[key] = tracked
            self._arrived(key, tracked)
        elif cls is Pipeline.StageInserted and (tracked := self._state.get(key)) is not None \
                and tracked.kind is Pipeline:
            tracked.stages.insert(values[1], values[0])


_PASSED_TERMS = 4096  # value tuples kept per TERMS (a file repeats a few hundred combinations of its vocabularies)

_CREATED = {Customer: Customer.Registered, Lead: Lead.Captured, Deal: Deal.Opened, Campaign: Campaign.Planned,
            Ticket: Ticket.Opened, Pipeline: Pipeline.Defined, Vocabulary: Vocabulary.Defined,
            ExchangeRate: ExchangeRate.Quoted, Reminder: Reminder.Emitted, Target: Target.Set,
            OwnerTeam: OwnerTeam.Assigned, SegmentChange: SegmentChange.Recorded}
_AGGREGATE = {event: aggregate for aggregate in _CREATED for event in vars(aggregate).values()
              if isinstance(event, type) and issubclass(event, CrmAggregate.Event)}

# Which rule guards which event (the same calls its command makes), and how it changes the state.
RULES: dict[type, Rule] = {**customer_lifecycle.RULES, **lead_lifecycle.RULES, **deal_lifecycle.RULES,
                           **campaign_lifecycle.RULES, **ticket_lifecycle.RULES, **pipeline_lifecycle.RULES,
                           **vocabulary_lifecycle.RULES, **exchange_rate_lifecycle.RULES, **target_lifecycle.RULES,
                           **reminder_lifecycle.RULES, **segment_change_lifecycle.RULES}

# Everything `HistoryRules._check` needs of an event type, in one look-up: (class, aggregate, creates it, rule,
# the vocabulary values its line ends with).
_EVENTS = {name: (schema.cls, _AGGREGATE[schema.cls], issubclass(schema.cls, CrmAggregate.Created),
                  RULES.get(schema.cls), TERMS.get(schema.cls, ())) for name, schema in SCHEMAS.items()}


def log_holder(app: Any) -> Callable[[list[UUID]], UUID | None] | None:
    """`HistoryRules`' way to ask which of some ids `app`'s log holds (`CrmApplication._held`, one query);
    None for an empty log."""
    return None if app.event_count() == 0 else app._held


def log_loader(app: Any) -> Callable[[UUID], CrmAggregate | None] | None:
    """`HistoryRules`' way to the aggregates `app`'s log already holds; None for an empty log (then no id is
    looked up: no UUID is built for each new aggregate, ≈ 1.2 µs, nor kept as absent)."""
    if app.event_count() == 0:
        return None

    def load(aggregate_id: UUID) -> CrmAggregate | None:
        try:
            return app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
    return load
