"""The first half of `crm import`'s checks: the rules on one event's own fields, line by line, in any process.

Each rule is the call the command that records the event makes, with the same arguments (amounts ≥ 0,
currency, priorities, scores, non-empty text, dates and keys, no NUL), after the ones every event's `Meta`
makes (business time within its range, an actor); `field_facts` runs them and hands on the few values the
in-order half needs (`facts.Facts`). Values of an installation's vocabularies (channels, region, industry,
loss reason) are checked in order instead, against the vocabulary in force at their line (`facts.TERMS`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from domain import campaign as campaign_rules
from domain import money
from domain import ticket as ticket_rules
from domain.base import refuse_nul, require_business_date, require_business_time, require_choice, require_text
from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.errors import DomainError
from domain.lead import Lead
from domain.pipeline import Pipeline, check_stage_key, check_stages
from domain.ticket import Ticket
from domain.vocabulary import (ASSIGNMENT_RULES, RESPONSE_KINDS, TICKET_PRIORITIES, TOUCH_DIRECTIONS, Vocabulary,
                               check_kind)
from services.history.event_lines import SCHEMAS, HistoryLine
from services.history.rules.facts import FACTS, REFERENCES, TERMS, Facts, id_of, micros
from services.history.rules.refusal import Refusal


def _text(what: str) -> Callable[[Any], Any]:
    return lambda value: require_text(value, what)


def _choice(allowed: tuple[str, ...], what: str) -> Callable[[Any], Any]:
    return lambda value: require_choice(value, allowed, what)


def _amount(what: str = "amount") -> Callable[[Any], Any]:
    return lambda value: money.amount(value, what)


def _business_date(what: str) -> Callable[[Any], Any]:
    """An optional date (read_line checked it is an ISO date) within business time's range."""
    return lambda value: value is None or require_business_date(date.fromisoformat(value), what)


def _list_of_text(value: list[Any]) -> list[Any]:
    """A vocabulary's values are text (which values its kind accepts is checked in order, `vocabulary_lifecycle`)."""
    if not all(isinstance(v, str) for v in value):
        raise DomainError("each value of a vocabulary is text")
    return value


def _flag(value: Any) -> Any:
    if not isinstance(value, bool):
        raise DomainError(f"open must be true or false, not {value!r}")
    return value


def _stages(value: list[Any]) -> list[str]:
    if not all(isinstance(s, dict) and s.keys() == {"key", "label"} for s in value):
        raise DomainError('each stage is an object with exactly "key" and "label"')
    for stage in value:
        require_text(stage["label"], "stage label")
    return check_stages([(s["key"], s["label"]) for s in value])


# The checks every event's `Meta` makes (business time is checked in `field_facts`, once it is parsed).
ENVELOPE_RULES: dict[str, Callable[[Any], Any]] = {"actor": _text("actor")}

# The same checks, with the same arguments, as the command that records the event.
FIELD_RULES: dict[type, dict[str, Callable[[Any], Any]]] = {
    Customer.Registered: {"name": _text("customer name")},
    Customer.TouchLogged: {"direction": _choice(TOUCH_DIRECTIONS, "touch direction")},
    Customer.TagAdded: {"tag": _text("tag")},
    Customer.TagRemoved: {"tag": _text("tag")},
    Lead.Assigned: {"owner": _text("owner"), "rule": _choice(ASSIGNMENT_RULES, "assignment rule")},
    Lead.Disqualified: {"reason": _text("disqualification reason")},
    Deal.Opened: {"title": _text("deal title"), "amount": _amount(), "currency": money.currency,
                  "owner": _text("owner"), "expected_close": _business_date("expected_close")},
    Deal.AmountChanged: {"old_amount": _amount(), "new_amount": _amount()},
    Deal.OwnerChanged: {"new_owner": _text("owner")},
    Deal.Reopened: {"reason": _text("reopen reason")},
    Campaign.Planned: {"name": _text("campaign name"), "budget": _amount("budget"), "currency": money.currency},
    Campaign.CostRecorded: {"amount": campaign_rules.require_cost},
    Campaign.ResponseRecorded: {"kind": _choice(RESPONSE_KINDS, "response kind")},
    Ticket.Opened: {"subject": _text("ticket subject"), "priority": _choice(TICKET_PRIORITIES, "priority")},
    Ticket.Assigned: {"assignee": _text("assignee")},
    Ticket.CustomerReplied: {"message": _text("message")},
    Ticket.Resolved: {"resolution": _text("resolution")},
    Ticket.SatisfactionRated: {"score": ticket_rules.require_score},
    Ticket.Reopened: {"reason": _text("reopen reason")},
    Pipeline.Defined: {"key": check_stage_key, "name": _text("pipeline name"), "stages": _stages},
    Pipeline.StageRenamed: {"label": _text("stage label")},
    Pipeline.StageInserted: {"label": _text("stage label")},
    Vocabulary.Defined: {"kind": check_kind, "values": _list_of_text, "open": _flag},
    Vocabulary.Replaced: {"values": _list_of_text, "open": _flag},
}


def field_facts(line: HistoryLine, raw: bytes) -> Facts:
    """Check one event's own fields (`raw`: the line's bytes) as its command would; Refusal names the field."""
    data = line.data
    if b"\\u0000" in raw:  # JSON writes NUL only so: one search of the bytes instead of one per field
        for name, value in data.items():
            try:
                refuse_nul({name: value})
            except DomainError as error:
                raise Refusal(name, str(error)) from None
    occurred = datetime.fromisoformat(data["occurred_at"])  # read_line checked it has a zone
    try:
        require_business_time(occurred)
    except DomainError as error:
        raise Refusal("occurred_at", str(error)) from None
    rules, facts = _PLANS[line.schema.name]
    for name, rule in rules:
        try:
            rule(data[name])
        except DomainError as error:
            raise Refusal(name, str(error)) from None
    values = tuple([id_of(data[name]) if reference else data[name] for name, reference in facts])
    if line.schema.cls is Pipeline.Defined:
        values = (values[0], [stage["key"] for stage in values[1]])
    return line.schema.name, id_of(line.subject), line.version, micros(occurred), values


# By event type: its envelope and field rules, and which FACTS (then TERMS) it hands on (and whether each is an id),
# looked up once.
_PLANS = {name: (tuple(ENVELOPE_RULES.items()) + tuple(FIELD_RULES.get(schema.cls, {}).items()),
                 tuple((field, field in REFERENCES) for field in FACTS.get(schema.cls, ()))
                 + tuple((field, False) for field, _, _ in TERMS.get(schema.cls, ())))
          for name, schema in SCHEMAS.items()}
