"""`crm import`'s domain checks: every imported event must be one the commands could have recorded.

The rules are the domain's own functions (`domain.deal.require_open`, `domain.lead.require_status`,
`domain.money.amount`, …), which the aggregates' commands call too; this module only says which of them
guards which event, on which field, and folds each aggregate's events into a compact `Tracked` state (a
slotted record of the few values the rules read: status, stage, pipeline, owner, last business time)
instead of building aggregates: ≈ 150 bytes per aggregate, and no domain event is built.

The checks come in two halves, so worker processes can do the first:

- `field_facts` (per line, in any process): the rules on one event's own fields (amounts ≥ 0, currency,
  channels, priorities, scores, non-empty text, no NUL), and the few values the second half needs.
- `HistoryRules.check` (in file order, in the importing process): versions, creation first, business time
  in order, status rules (terminal states, reopen), stages known in the deal's pipeline, and references to
  customers, leads, campaigns, deals and pipelines in the file or already in the log.

References may point forward: one command's events are saved aggregate by aggregate (a lead's Converted
precedes its customer's Registered and its deal's Opened) and a file may hold its pipelines last. So a
reference to an aggregate not seen yet waits for its creation; the file is refused if it never comes.
To name the FIRST bad line in file order, after a refusal the check reads on (creations only) while an
earlier line still waits for a reference.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain import campaign as campaign_rules
from domain import customer as customer_rules
from domain import deal as deal_rules
from domain import lead as lead_rules
from domain import money
from domain import ticket as ticket_rules
from domain.base import CrmAggregate, refuse_nul, require_choice, require_in_order, require_text
from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.errors import DomainError
from domain.lead import Lead
from domain.pipeline import Pipeline, check_new_stage, check_stages, pipeline_id, stage_index
from domain.ticket import Ticket
from domain.vocabulary import (ACQUISITION_CHANNELS, ASSIGNMENT_RULES, RESPONSE_KINDS, TICKET_PRIORITIES,
                               TOUCH_CHANNELS, TOUCH_DIRECTIONS)
from services.history.event_lines import SCHEMAS, HistoryLine


class Refusal(ValueError):
    """One event breaks a rule: which field, and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field!r}: {reason}")
        self.field = field


# --- half 1: one event's own fields (any process) -----------------------------------------------------

def _text(what: str) -> Callable[[Any], Any]:
    return lambda value: require_text(value, what)


def _choice(allowed: tuple[str, ...], what: str) -> Callable[[Any], Any]:
    return lambda value: require_choice(value, allowed, what)


def _amount(what: str = "amount") -> Callable[[Any], Any]:
    return lambda value: money.amount(value, what)


def _stages(value: list[Any]) -> list[str]:
    if not all(isinstance(s, dict) and s.keys() == {"key", "label"} for s in value):
        raise DomainError('each stage is an object with exactly "key" and "label"')
    for stage in value:
        require_text(stage["label"], "stage label")
    return check_stages([(s["key"], s["label"]) for s in value])


# The same checks, with the same arguments, as the command that records the event.
FIELD_RULES: dict[type, dict[str, Callable[[Any], Any]]] = {
    Customer.Registered: {"name": _text("customer name"), "region": _text("region"), "industry": _text("industry"),
                          "channel": _choice(ACQUISITION_CHANNELS, "acquisition channel")},
    Customer.TouchLogged: {"channel": _choice(TOUCH_CHANNELS, "touch channel"),
                           "direction": _choice(TOUCH_DIRECTIONS, "touch direction")},
    Customer.TagAdded: {"tag": _text("tag")},
    Customer.TagRemoved: {"tag": _text("tag")},
    Lead.Captured: {"name": _text("lead name"), "region": _text("region"), "industry": _text("industry"),
                    "channel": _choice(ACQUISITION_CHANNELS, "acquisition channel")},
    Lead.Assigned: {"owner": _text("owner"), "rule": _choice(ASSIGNMENT_RULES, "assignment rule")},
    Lead.Contacted: {"channel": _choice(TOUCH_CHANNELS, "touch channel")},
    Lead.Disqualified: {"reason": _text("disqualification reason")},
    Deal.Opened: {"title": _text("deal title"), "amount": _amount(), "currency": money.currency,
                  "owner": _text("owner")},
    Deal.AmountChanged: {"old_amount": _amount(), "new_amount": _amount()},
    Deal.OwnerChanged: {"new_owner": _text("owner")},
    Deal.Lost: {"reason": _text("loss reason")},
    Deal.Reopened: {"reason": _text("reopen reason")},
    Campaign.Planned: {"name": _text("campaign name"), "channel": _choice(ACQUISITION_CHANNELS, "campaign channel"),
                       "budget": _amount("budget"), "currency": money.currency},
    Campaign.CostRecorded: {"amount": lambda value: campaign_rules.require_cost(money.amount(value, "cost"))},
    Campaign.ResponseRecorded: {"kind": _choice(RESPONSE_KINDS, "response kind")},
    Ticket.Opened: {"subject": _text("ticket subject"), "priority": _choice(TICKET_PRIORITIES, "priority"),
                    "channel": _choice(TOUCH_CHANNELS, "channel")},
    Ticket.Assigned: {"assignee": _text("assignee")},
    Ticket.CustomerReplied: {"message": _text("message")},
    Ticket.Resolved: {"resolution": _text("resolution")},
    Ticket.SatisfactionRated: {"score": ticket_rules.require_score},
    Ticket.Reopened: {"reason": _text("reopen reason")},
    Pipeline.Defined: {"name": _text("pipeline name"), "stages": _stages},
    Pipeline.StageRenamed: {"label": _text("stage label")},
    Pipeline.StageInserted: {"label": _text("stage label")},
}

# The values of a line the in-order half reads (besides occurred_at), by event class.
FACTS: dict[type, tuple[str, ...]] = {
    Customer.Registered: ("campaign_id",),
    Lead.Captured: ("campaign_id",),
    Lead.Assigned: ("owner",),
    Lead.Converted: ("customer_id", "deal_id"),
    Deal.Opened: ("pipeline", "stage", "customer_id", "lead_id", "campaign_id"),
    Deal.StageChanged: ("from_stage", "to_stage"),
    Deal.Won: ("from_stage",),
    Deal.Lost: ("from_stage",),
    Deal.Reopened: ("stage",),
    Campaign.ResponseRecorded: ("customer_id", "lead_id"),
    Ticket.Opened: ("customer_id",),
    Ticket.StatusChanged: ("from_status", "to_status"),
    Pipeline.Defined: ("key", "stages"),
    Pipeline.StageRenamed: ("stage",),
    Pipeline.StageInserted: ("stage", "position"),
}


# What the in-order half needs of one line: (event type, aggregate id as a 128-bit int, version, occurred_at in
# µs since the epoch, FACTS of its class in that order, ids as ints). Plain values, so a worker's answer
# pickles and unpickles cheaply: the parent, which reads them all, is the import's serial part.
Facts = tuple[str, int, int, int, tuple[Any, ...]]
REFERENCES = frozenset({"customer_id", "lead_id", "campaign_id", "deal_id"})
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _micros(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(microseconds=1)


def _instant_of(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def field_facts(line: HistoryLine, raw: bytes) -> Facts:
    """Check one event's own fields (`raw`: the line's bytes) as its command would; Refusal names the field."""
    data = line.data
    if b"\\u0000" in raw:  # JSON writes NUL only so: one search of the bytes instead of one per field
        for name, value in data.items():
            try:
                refuse_nul({name: value})
            except DomainError as error:
                raise Refusal(name, str(error)) from None
    rules, facts = _PLANS[line.schema.name]
    for name, rule in rules:
        try:
            rule(data[name])
        except DomainError as error:
            raise Refusal(name, str(error)) from None
    values = tuple([_id(data[name]) if reference else data[name] for name, reference in facts])
    if line.schema.cls is Pipeline.Defined:
        values = (values[0], [stage["key"] for stage in values[1]])
    occurred = datetime.fromisoformat(data["occurred_at"])  # read_line checked it has a zone
    return line.schema.name, _id(line.subject), line.version, _micros(occurred), values


# By event type: its field rules, and which FACTS it hands on (and whether each is an id), looked up once.
_PLANS = {name: (tuple(FIELD_RULES.get(schema.cls, {}).items()),
                 tuple((field, field in REFERENCES) for field in FACTS.get(schema.cls, ())))
          for name, schema in SCHEMAS.items()}


# --- half 2: in file order ----------------------------------------------------------------------------

class Tracked:
    """What the rules read of one aggregate, after its events so far (the aggregate's attribute names)."""

    __slots__ = ("kind", "version", "last", "logged", "status", "stage", "pipeline", "owner", "contacted", "rated",
                 "forgotten", "stages")

    def __init__(self, kind: type, version: int = 0, last: int | None = None, logged: bool = False) -> None:
        self.kind, self.version, self.last, self.logged = kind, version, last, logged
        self.status = self.stage = self.pipeline = self.owner = None
        self.contacted = self.rated = self.forgotten = False
        self.stages: list[str] = []

    @classmethod
    def of(cls, aggregate: CrmAggregate) -> Tracked:
        """The state of an aggregate loaded from the log."""
        tracked = cls(type(aggregate), aggregate.version, _micros(aggregate.last_occurred_at), logged=True)
        for name in cls.__slots__[4:]:
            if hasattr(aggregate, name):
                setattr(tracked, name, getattr(aggregate, name))
        if isinstance(aggregate, Pipeline):
            tracked.pipeline, tracked.stages = aggregate.key, list(aggregate.stage_keys)
        return tracked


def _prefix(facts: Facts) -> str:
    """How messages name a line: its event type and aggregate."""
    return f"{facts[0]} of {UUID(int=facts[1])}"


def _id(text: str | None) -> int | None:
    return None if text is None else int(text.replace("-", ""), 16)


def _kind_name(kind: type) -> str:
    return kind.__name__.lower()


class Waiting(NamedTuple):
    """A line whose reference names an aggregate not seen yet."""

    line: int
    facts: Facts  # the line's, for the message
    field: str
    kind: type
    target: str  # what the reference names, for the message ("": the id)
    check: Callable[[Tracked], None] | None  # more to check once it exists (a stage of a pipeline)
    check_field: str  # the field `check` is about


class HistoryRules:
    """The in-order half: each aggregate's compact state, and the references still waiting."""

    def __init__(self, load: Callable[[UUID], CrmAggregate | None]) -> None:
        """`load` gives an aggregate the log already holds (None: not there)."""
        self._load = load
        self._state: dict[int, Tracked] = {}  # by the id's 128-bit integer: a third of the memory of UUID keys
        self._absent: set[int] = set()  # looked up in the log and not there
        self._waiting: dict[int, list[Waiting]] = {}
        self._line, self._facts = 0, ("", 0, 0, 0, ())  # the line being checked
        self.failure: tuple[int, str] | None = None  # (line, message): the first refusal so far

    # -- looking aggregates up

    def _known(self, key: int) -> Tracked | None:
        tracked = self._state.get(key)
        if tracked is None and key not in self._absent:
            aggregate = self._load(UUID(int=key))
            if aggregate is None:
                self._absent.add(key)
            else:
                tracked = self._state[key] = Tracked.of(aggregate)
        return tracked

    def _refer(self, field: str, kind: type, key: int | None, check: Callable[[Tracked], None] | None = None,
               target: str = "", check_field: str = "") -> None:
        """Id `key` must name an aggregate of `kind`, now or later in the file (then `check` it, if given,
        as a rule on `check_field`)."""
        if key is None:
            return
        check_field = check_field or field
        tracked = self._known(key)
        if tracked is None:
            self._waiting.setdefault(key, []).append(
                Waiting(self._line, self._facts, field, kind, target, check, check_field))
            return
        if tracked.kind is not kind:
            self._require_kind(field, kind, tracked, target or str(UUID(int=key)))
        if check:
            try:
                check(tracked)
            except DomainError as error:
                raise Refusal(check_field, str(error)) from None

    @staticmethod
    def _require_kind(field: str, kind: type, tracked: Tracked, target: str) -> None:
        if tracked.kind is not kind:
            raise Refusal(field, f"{target} is a {_kind_name(tracked.kind)}, not a {_kind_name(kind)}")

    # -- one line

    @property
    def _prefix(self) -> str:
        """How messages name the line being checked."""
        return _prefix(self._facts)

    def check(self, number: int, facts: Facts) -> None:
        """Check one line (its fields already passed `field_facts`); remembers the first refusal."""
        self._line, self._facts = number, facts
        if self.failure is not None:  # reading on only to resolve earlier lines' references
            self._created_only(facts)
            return
        try:
            self._check(facts)
        except Refusal as refusal:
            self.refuse(number, f"{self._prefix}, {refusal}", created=facts[1] if _EVENTS[facts[0]][2] else None)
        except ValueError as error:  # versions: the message is whole already
            self.refuse(number, str(error))

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
                self.refuse(waiting.line, f"{_prefix(waiting.facts)}, field {waiting.field!r}: no "
                                          f"{_kind_name(waiting.kind)} {waiting.target or UUID(int=key)} in the "
                                          "file or the log")
        return self.failure

    def _check(self, facts: Facts) -> None:
        name, key, version, occurred, values = facts
        cls, kind, created, rule = _EVENTS[name]
        tracked = self._state.get(key) or self._known(key)
        self._check_version(name, key, version, tracked)
        if tracked is None:
            if not created:
                raise Refusal("type", f"the first event of a {_kind_name(kind)} must be "
                                      f"crm.{kind.__name__}.{_CREATED[kind].__name__}, not {name}")
            tracked = Tracked(kind)
        elif tracked.kind is not kind:
            raise Refusal("type", f"{UUID(int=key)} is a {_kind_name(tracked.kind)}, not a {_kind_name(kind)}")
        elif created:
            raise Refusal("type", f"{_kind_name(kind)} {UUID(int=key)} already exists")
        if tracked.last is not None and occurred < tracked.last:  # then the domain's rule says why
            try:
                require_in_order(_instant_of(tracked.last), _instant_of(occurred), kind.__name__)
            except DomainError as error:
                raise Refusal("occurred_at", str(error)) from None
        if rule:
            try:
                rule(self, tracked, *values)
            except DomainError as error:
                raise Refusal("type", str(error)) from None
        tracked.version, tracked.last, tracked.logged = version, occurred, False
        self._state[key] = tracked
        if created:
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
        for waiting in self._waiting.pop(key, ()):
            try:
                self._require_kind(waiting.field, waiting.kind, tracked, waiting.target or str(UUID(int=key)))
                if waiting.check:
                    try:
                        waiting.check(tracked)
                    except DomainError as error:
                        raise Refusal(waiting.check_field, str(error)) from None
            except Refusal as refusal:
                self.refuse(waiting.line, f"{_prefix(waiting.facts)}, {refusal}")

    def _created_only(self, facts: Facts) -> None:
        """After a refusal: track only what aggregates exist (and pipelines' stages)."""
        name, key, _, _, values = facts
        cls, kind, created, _ = _EVENTS[name]
        if created and key not in self._state:
            tracked = Tracked(kind)
            if cls is Pipeline.Defined:
                tracked.pipeline, tracked.stages = values
            self._state[key] = tracked
            self._arrived(key, tracked)
        elif cls is Pipeline.StageInserted and (tracked := self._state.get(key)) is not None:
            tracked.stages.insert(values[1], values[0])

    # -- rules needing other aggregates

    def stage(self, field: str, pipeline: str, stage: str, pipeline_field: str = "") -> None:
        """`stage` must be an open stage of pipeline `pipeline` (defined in the file or the log)."""
        def known_stage(tracked: Tracked) -> None:
            stage_index(pipeline, tracked.stages, stage)
        self._refer(pipeline_field or field, Pipeline, _pipeline_key(pipeline), known_stage,
                    target=repr(pipeline), check_field=field)


_CREATED = {Customer: Customer.Registered, Lead: Lead.Captured, Deal: Deal.Opened, Campaign: Campaign.Planned,
            Ticket: Ticket.Opened, Pipeline: Pipeline.Defined}
_AGGREGATE = {event: aggregate for aggregate in _CREATED for event in vars(aggregate).values()
              if isinstance(event, type) and issubclass(event, CrmAggregate.Event)}


def _aggregate_of(event_class: type) -> type:
    return _AGGREGATE[event_class]


@functools.lru_cache(maxsize=1024)
def _pipeline_key(key: str) -> int:
    return pipeline_id(key).int


# --- which rule guards which event (the same calls its command makes), and how it changes the state ----

def _same(field: str, given: str, held: str | None, what: str) -> None:
    """A field the command derives from the state (a deal's from_stage) must be what the state holds."""
    if given != held:
        raise Refusal(field, f"{field} {given!r} is not the {what} {held!r}")


def _customer_changed(rules: HistoryRules, customer: Tracked, *_: Any) -> None:
    customer_rules.require_not_forgotten(customer.forgotten)


def _customer_forgotten(rules: HistoryRules, customer: Tracked) -> None:
    _customer_changed(rules, customer)
    customer.forgotten = True


def _registered(rules: HistoryRules, customer: Tracked, campaign_id: int | None) -> None:
    rules._refer("campaign_id", Campaign, campaign_id)


def _captured(rules: HistoryRules, lead: Tracked, campaign_id: int | None) -> None:
    rules._refer("campaign_id", Campaign, campaign_id)
    lead.status = lead_rules.NEW


def _lead_assigned(rules: HistoryRules, lead: Tracked, owner: str) -> None:
    lead_rules.require_status(lead.status, "assign")
    lead.owner = sys.intern(owner)  # a few owners, many leads: one string each


def _lead_contacted(rules: HistoryRules, lead: Tracked) -> None:
    lead_rules.require_status(lead.status, "contact")
    lead_rules.require_owner(lead.owner)
    lead.contacted = True


def _lead_qualified(rules: HistoryRules, lead: Tracked) -> None:
    lead_rules.require_status(lead.status, "qualify")
    lead_rules.require_contacted(lead.contacted)
    lead.status = lead_rules.QUALIFIED


def _lead_disqualified(rules: HistoryRules, lead: Tracked) -> None:
    lead_rules.require_status(lead.status, "disqualify")
    lead.status = lead_rules.DISQUALIFIED


def _lead_converted(rules: HistoryRules, lead: Tracked, customer_id: int, deal_id: int) -> None:
    lead_rules.require_status(lead.status, "convert")
    rules._refer("customer_id", Customer, customer_id)
    rules._refer("deal_id", Deal, deal_id)
    lead.status = lead_rules.CONVERTED


def _deal_opened(rules: HistoryRules, deal: Tracked, pipeline: str, stage: str, customer_id: int,
                 lead_id: int | None, campaign_id: int | None) -> None:
    rules.stage("stage", pipeline, stage, pipeline_field="pipeline")
    rules._refer("customer_id", Customer, customer_id)
    rules._refer("lead_id", Lead, lead_id)
    rules._refer("campaign_id", Campaign, campaign_id)
    deal.status, deal.stage, deal.pipeline = deal_rules.OPEN, sys.intern(stage), sys.intern(pipeline)


def _deal_stage_changed(rules: HistoryRules, deal: Tracked, from_stage: str, to_stage: str) -> None:
    deal_rules.require_open(deal.status, "change its stage")
    rules.stage("to_stage", deal.pipeline, to_stage)
    deal_rules.require_new_stage(deal.stage, to_stage)
    _same("from_stage", from_stage, deal.stage, "deal's stage")
    deal.stage = sys.intern(to_stage)


def _deal_amount_changed(rules: HistoryRules, deal: Tracked) -> None:
    deal_rules.require_open(deal.status, "change its amount")


def _deal_closed(action: str, status: str) -> Callable[..., None]:
    def close(rules: HistoryRules, deal: Tracked, from_stage: str) -> None:
        deal_rules.require_open(deal.status, action)
        _same("from_stage", from_stage, deal.stage, "deal's stage")
        deal.status = status
    return close


def _deal_reopened(rules: HistoryRules, deal: Tracked, stage: str) -> None:
    deal_rules.require_closed(deal.status)
    rules.stage("stage", deal.pipeline, stage)
    deal.status, deal.stage = deal_rules.OPEN, sys.intern(stage)


def _campaign_step(action: str, status: str | None) -> Callable[..., None]:
    def step(rules: HistoryRules, campaign: Tracked) -> None:
        if action:
            campaign_rules.require_status(campaign.status, action)
        campaign.status = status or campaign.status
    return step


def _campaign_response(rules: HistoryRules, campaign: Tracked, customer_id: int | None, lead_id: int | None) -> None:
    campaign_rules.require_status(campaign.status, "record_response")
    campaign_rules.require_respondent(customer_id, lead_id)  # type: ignore[arg-type]
    rules._refer("customer_id", Customer, customer_id)
    rules._refer("lead_id", Lead, lead_id)


def _ticket_opened(rules: HistoryRules, ticket: Tracked, customer_id: int) -> None:
    rules._refer("customer_id", Customer, customer_id)
    ticket.status = "open"


def _ticket_working(action: str, status: str | None = None) -> Callable[..., None]:
    def step(rules: HistoryRules, ticket: Tracked) -> None:
        ticket_rules.require_working(ticket.status, action)
        ticket.status = status or ticket.status
    return step


def _ticket_status_changed(rules: HistoryRules, ticket: Tracked, from_status: str, to_status: str) -> None:
    ticket_rules.require_status_change(ticket.status, to_status)
    _same("from_status", from_status, ticket.status, "ticket's status")
    ticket.status = sys.intern(to_status)


def _ticket_replied(rules: HistoryRules, ticket: Tracked) -> None:
    ticket_rules.require_not_closed(ticket.status)


def _ticket_rated(rules: HistoryRules, ticket: Tracked) -> None:
    ticket_rules.require_rateable(ticket.status, ticket.rated)
    ticket.rated = True


def _ticket_reopened(rules: HistoryRules, ticket: Tracked) -> None:
    ticket_rules.require_reopenable(ticket.status)
    ticket.status, ticket.rated = "open", False


def _ticket_closed(rules: HistoryRules, ticket: Tracked) -> None:
    ticket_rules.require_closable(ticket.status)
    ticket.status = ticket_rules.CLOSED


def _pipeline_defined(rules: HistoryRules, pipeline: Tracked, key: str, stages: list[str]) -> None:
    subject = rules._facts[1]
    if _pipeline_key(key) != subject:
        raise Refusal("key", f"pipeline {key!r} has the id {pipeline_id(key)}, derived from its key, "
                             f"not {UUID(int=subject)}")
    pipeline.pipeline, pipeline.stages = key, list(stages)


def _stage_renamed(rules: HistoryRules, pipeline: Tracked, stage: str) -> None:
    stage_index(pipeline.pipeline, pipeline.stages, stage)


def _stage_inserted(rules: HistoryRules, pipeline: Tracked, stage: str, position: int) -> None:
    check_new_stage(pipeline.pipeline, pipeline.stages, stage)
    if not 0 <= position <= len(pipeline.stages):
        raise Refusal("position", f"position {position} is outside the pipeline's {len(pipeline.stages)} stages")
    pipeline.stages.insert(position, stage)


RULES: dict[type, Callable[..., None]] = {
    Customer.Registered: _registered,
    Customer.ContactDetailsChanged: _customer_changed,
    Customer.TouchLogged: _customer_changed,
    Customer.TagAdded: _customer_changed,
    Customer.TagRemoved: _customer_changed,
    Customer.ConsentChanged: _customer_changed,
    Customer.Forgotten: _customer_forgotten,
    Lead.Captured: _captured,
    Lead.Assigned: _lead_assigned,
    Lead.Contacted: _lead_contacted,
    Lead.Qualified: _lead_qualified,
    Lead.Disqualified: _lead_disqualified,
    Lead.Converted: _lead_converted,
    Deal.Opened: _deal_opened,
    Deal.StageChanged: _deal_stage_changed,
    Deal.AmountChanged: _deal_amount_changed,
    Deal.Won: _deal_closed("win it", "won"),
    Deal.Lost: _deal_closed("lose it", "lost"),
    Deal.Reopened: _deal_reopened,
    Campaign.Planned: _campaign_step("", campaign_rules.PLANNED),
    Campaign.Launched: _campaign_step("launch", campaign_rules.LAUNCHED),
    Campaign.ResponseRecorded: _campaign_response,
    Campaign.Closed: _campaign_step("close", campaign_rules.CLOSED),
    Ticket.Opened: _ticket_opened,
    Ticket.Assigned: _ticket_working("assign"),
    Ticket.StatusChanged: _ticket_status_changed,
    Ticket.CustomerReplied: _ticket_replied,
    Ticket.Resolved: _ticket_working("resolve", ticket_rules.RESOLVED),
    Ticket.SatisfactionRated: _ticket_rated,
    Ticket.Reopened: _ticket_reopened,
    Ticket.Closed: _ticket_closed,
    Pipeline.Defined: _pipeline_defined,
    Pipeline.StageRenamed: _stage_renamed,
    Pipeline.StageInserted: _stage_inserted,
}


# Everything `HistoryRules._check` needs of an event type, in one look-up: (class, aggregate, creates it, rule).
_EVENTS = {name: (schema.cls, _aggregate_of(schema.cls), issubclass(schema.cls, CrmAggregate.Created),
                  RULES.get(schema.cls)) for name, schema in SCHEMAS.items()}


def log_loader(app: Any) -> Callable[[UUID], CrmAggregate | None]:
    """`HistoryRules`' way to the aggregates `app`'s log already holds (none are asked of an empty log)."""
    if app.event_count() == 0:
        return lambda aggregate_id: None

    def load(aggregate_id: UUID) -> CrmAggregate | None:
        try:
            return app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
    return load
