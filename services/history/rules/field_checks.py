"""The first half of `crm import`'s checks: the rules on one event's own fields, line by line, in any process.

Each rule is the call the command that records the event makes, with the same arguments (amounts ≥ 0,
currency, priorities, scores, non-empty text, properties without contact details, dates and keys, no NUL),
after the ones every event's `Meta` makes (business time within its range, an actor); `field_facts` runs them
and hands on the few values the in-order half needs (`facts.Facts`). Values of an installation's vocabularies
(channels, region, industry, loss reason) are checked in order instead, against the vocabulary in force at
their line (`facts.TERMS`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from uuid import UUID

from domain import campaign as campaign_rules
from domain import campaign_variants as variant_rules
from domain import money
from domain import properties
from domain import ticket as ticket_rules
from domain.base import (refuse_nul, require_business_date, require_business_time, require_choice, require_dimension,
                         require_text)
from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.errors import DomainError
from domain.exchange_rates import ExchangeRate, require_rate, require_source, valid_from_instant
from domain.external_ids import check_qualified, imported_id as legacy_id, record_id
from domain.lead import Lead
from domain.partitions import partition_of
from domain.forecasting import require_category, require_probability
from domain.pipeline import Pipeline, check_remind_after_days, check_stage_key, check_stages
from domain.segment_change_rules import SegmentChange, require_tier
from domain.targets import SCOPES, OwnerTeam, Target, require_target_period
from domain.ticket import Ticket
from domain.vocabulary import (ASSIGNMENT_RULES, RESPONSE_KINDS, TICKET_PRIORITIES, TOUCH_DIRECTIONS, Vocabulary,
                               check_kind)
from services.history.event_lines import SCHEMAS, HistoryLine
from services.history.rules.facts import FACTS, REFERENCES, TERMS, Facts, id_of, micros
from services.history.rules.refusal import Refusal


_TEXT_RULES: set[Callable[[Any], Any]] = set()  # the rules that are `require_text` alone (`field_facts` skips passing text)
# What some rules are, for the compiled import path (`services.history.native_encoder`), which takes a line's
# facts itself only when each of its rules is one of these and surely passes (else `field_facts` decides).
RULE_KINDS: dict[Callable[[Any], Any], tuple[str, Any]] = {money.currency: ("currency", money.CURRENCIES)}


def _kind(rule: Callable[[Any], Any], kind: str, argument: Any = None) -> Callable[[Any], Any]:
    RULE_KINDS[rule] = (kind, argument)
    return rule


def _text(what: str) -> Callable[[Any], Any]:
    def rule(value: Any) -> Any:
        return require_text(value, what)
    _TEXT_RULES.add(rule)
    return rule


def _choice(allowed: tuple[str, ...], what: str) -> Callable[[Any], Any]:
    return _kind(lambda value: require_choice(value, allowed, what), "choice", allowed)


def _amount(what: str = "amount") -> Callable[[Any], Any]:
    return _kind(lambda value: money.amount(value, what), "amount")


def _business_date(what: str) -> Callable[[Any], Any]:
    """An optional date (read_line checked it is an ISO date) within business time's range."""
    return _kind(lambda value: value is None or require_business_date(date.fromisoformat(value), what), "business_date")


def _list_of_text(value: list[Any]) -> list[Any]:
    """A vocabulary's values are text (which values its kind accepts is checked in order, `vocabulary_lifecycle`)."""
    if not all(isinstance(v, str) for v in value):
        raise DomainError("each value of a vocabulary is text")
    return value


def _optional(rule: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: value is None or rule(value)


def _team(value: Any) -> Any:
    """A team, or "" for none (`OwnerTeam`): not sealed, so no contact details."""
    return value == "" or require_dimension(value, "team")


def _flag(value: Any) -> Any:
    if not isinstance(value, bool):
        raise DomainError(f"open must be true or false, not {value!r}")
    return value


def _external_id(kind: str) -> Callable[[Any], Any]:
    return _kind(lambda value: check_qualified(value, kind), "external_id")


# The kind of record each creation event makes, whose external id must derive its id (`record_id`).
KINDS: dict[type, str] = {Customer.Registered: "customer", Lead.Captured: "lead", Deal.Opened: "deal",
                          Ticket.Opened: "ticket", Campaign.Planned: "campaign"}


def _require_derived_id(line: HistoryLine) -> None:
    """A record with an external id has the id derived from it, as its creation command gives it: so a
    second record with that external id can never be written (it would be the same aggregate). A deal's or
    ticket's is placed in its customer's home partition, or — an export written before home partitions — is
    the bare derived id (`legacy_ids`); an id without an external id is kept as the export has it, in
    whatever partition (old exports predate the rule: see `domain.partitions`)."""
    kind = KINDS.get(line.schema.cls)
    if kind is not None and line.data["external_id"]:
        subject = UUID(line.subject)
        try:
            if subject != legacy_id(kind, line.data["external_id"]):
                record_id(kind, line.data["external_id"], subject, _home(line))
        except DomainError as error:
            raise Refusal("external_id", str(error)) from None


def _home(line: HistoryLine) -> int | None:
    """The home partition a created deal or ticket belongs in: its customer's (None for other records)."""
    customer = line.data.get("customer_id") if line.schema.cls in (Deal.Opened, Ticket.Opened) else None
    try:
        return None if customer is None else partition_of(UUID(str(customer)))
    except ValueError:
        return None  # not a UUID: its own field check refuses it


def _stages(value: list[Any]) -> list[str]:
    if not all(isinstance(s, dict) and {"key", "label"} <= s.keys() <= STAGE_FIELDS for s in value):
        raise DomainError('each stage is an object with "key" and "label" (and optionally "remind_after_days")')
    for stage in value:
        require_text(stage["label"], "stage label")
        if "remind_after_days" in stage and check_remind_after_days(stage["key"], stage["remind_after_days"]) \
                != stage["remind_after_days"] or stage.get("remind_after_days", None) == []:
            raise DomainError(f"stage {stage['key']!r}: remind_after_days is stored as the command stores it "
                              "(ascending numbers, whole ones whole, absent when none)")
    return check_stages([(s["key"], s["label"]) for s in value])


STAGE_FIELDS = {"key", "label", "remind_after_days"}


# The checks every event's `Meta` makes (business time is checked in `field_facts`, once it is parsed).
ENVELOPE_RULES: dict[str, Callable[[Any], Any]] = {"actor": _text("actor")}

# The same checks, with the same arguments, as the command that records the event.
FIELD_RULES: dict[type, dict[str, Callable[[Any], Any]]] = {
    Customer.Registered: {"name": _text("customer name"), "external_id": _external_id("customer")},
    Customer.TouchLogged: {"direction": _choice(TOUCH_DIRECTIONS, "touch direction")},
    Customer.TagAdded: {"tag": _text("tag")},
    Customer.TagRemoved: {"tag": _text("tag")},
    Customer.PropertiesChanged: {"changes": properties.require_changes},
    Lead.Captured: {"external_id": _external_id("lead")},
    Lead.Assigned: {"owner": _text("owner"), "rule": _choice(ASSIGNMENT_RULES, "assignment rule")},
    Lead.Disqualified: {"reason": _text("disqualification reason")},
    Lead.PropertiesChanged: {"changes": properties.require_changes},
    Deal.Opened: {"title": _text("deal title"), "amount": _amount(), "currency": money.currency,
                  "owner": _text("owner"), "expected_close": _business_date("expected_close"),
                  "external_id": _external_id("deal")},
    Deal.AmountChanged: {"old_amount": _amount(), "new_amount": _amount()},
    Deal.OwnerChanged: {"new_owner": _text("owner")},
    Deal.PropertiesChanged: {"changes": properties.require_changes},
    Deal.Reopened: {"reason": _text("reopen reason")},
    Deal.ExpectedCloseChanged: {"new_close": lambda value: require_business_date(date.fromisoformat(value),
                                                                                 "expected_close")},
    Deal.ProbabilityChanged: {"new_probability": _optional(require_probability)},
    Deal.ForecastCategoryChanged: {"new_category": _optional(require_category)},
    Pipeline.StageForecastSet: {"probability": require_probability, "forecast_category": require_category},
    Target.Set: {"scope": _choice(SCOPES, "target scope"), "name": _text("target name"),
                 "period": require_target_period, "amount": _amount(), "currency": money.currency},
    Target.Changed: {"amount": _amount(), "currency": money.currency},
    OwnerTeam.Assigned: {"owner": _text("owner"), "team": _team},
    OwnerTeam.Moved: {"new_team": _team},
    Campaign.Planned: {"name": _text("campaign name"), "budget": _amount("budget"), "currency": money.currency,
                       "external_id": _external_id("campaign")},
    Campaign.CostRecorded: {"amount": campaign_rules.require_cost},
    Campaign.ResponseRecorded: {"kind": _choice(RESPONSE_KINDS, "response kind")},
    Lead.RespondedToCampaign: {"kind": _choice(RESPONSE_KINDS, "response kind")},
    Customer.RespondedToCampaign: {"kind": _choice(RESPONSE_KINDS, "response kind")},
    Campaign.VariantsDefined: {"variants": variant_rules.require_stored_variants},
    Campaign.ExposuresRecorded: {"variant": variant_rules.require_key, "count": variant_rules.require_count},
    Campaign.VariantStopped: {"variant": variant_rules.require_key, "reason": _text("reason")},
    Campaign.WinnerDeclared: {"variant": variant_rules.require_key, "reason": _text("reason")},
    Ticket.Opened: {"subject": _text("ticket subject"), "priority": _choice(TICKET_PRIORITIES, "priority"),
                    "external_id": _external_id("ticket")},
    Ticket.Assigned: {"assignee": _text("assignee")},
    Ticket.CustomerReplied: {"message": _text("message")},
    Ticket.Resolved: {"resolution": _text("resolution")},
    Ticket.SatisfactionRated: {"score": ticket_rules.require_score},
    Ticket.Reopened: {"reason": _text("reopen reason")},
    Pipeline.Defined: {"key": check_stage_key, "name": _text("pipeline name"), "stages": _stages},
    Pipeline.StageRenamed: {"label": _text("stage label")},
    Pipeline.StageInserted: {"label": _text("stage label")},
    Pipeline.StageRemindersSet: {"remind_after_days": lambda days: check_remind_after_days("", days)},
    SegmentChange.Recorded: {"old_tier": require_tier, "new_tier": require_tier},
    Vocabulary.Defined: {"kind": check_kind, "values": _list_of_text, "open": _flag},
    Vocabulary.Replaced: {"values": _list_of_text, "open": _flag},
    **dict.fromkeys((ExchangeRate.Quoted, ExchangeRate.Corrected), {
        "currency": money.currency, "quote": money.currency, "rate": require_rate,
        "valid_from": lambda value: require_business_date(date.fromisoformat(value), "valid_from"),
        "source": require_source}),
}


# Fields a command stores stripped (`require_text`, `require_dimension`, a vocabulary's `check`, or an explicit
# `.strip()` in the aggregate): a history file is a record of events as they were stored, not input to tidy
# up, so a line holding " web " is refused rather than stored as a second channel beside "web" (review12 P1-5).
# Fields the commands store verbatim (notes, summaries of a lead's contact, a rating's comment) are not here.
STRIPPED: dict[type, tuple[str, ...]] = {
    Customer.Registered: ("name", "company", "email", "phone"),
    Customer.ContactDetailsChanged: ("email", "phone"),
    Customer.TouchLogged: ("summary",),
    Customer.TagAdded: ("tag",),
    Customer.TagRemoved: ("tag",),
    Lead.Captured: ("name", "company", "contact", "variant"),
    Lead.Assigned: ("owner",),
    Lead.Disqualified: ("reason",),
    Deal.Opened: ("title", "owner"),
    Deal.OwnerChanged: ("new_owner",),
    Deal.Lost: ("competitor",),
    Deal.Reopened: ("reason",),
    Deal.ExpectedCloseChanged: ("reason",),
    Deal.ProbabilityChanged: ("reason",),
    Deal.ForecastCategoryChanged: ("reason",),
    Target.Set: ("name", "period", "reason"),
    Target.Changed: ("reason",),
    OwnerTeam.Assigned: ("owner", "team", "reason"),
    OwnerTeam.Moved: ("new_team", "reason"),
    Campaign.Planned: ("name",),
    Campaign.VariantsDefined: ("reason",),
    Campaign.ExposuresRecorded: ("variant",),
    Campaign.VariantStopped: ("variant", "reason"),
    Campaign.WinnerDeclared: ("variant", "reason"),
    Lead.RespondedToCampaign: ("variant",),
    Customer.RespondedToCampaign: ("variant",),
    Ticket.Opened: ("subject",),
    Ticket.Assigned: ("assignee",),
    Ticket.CustomerReplied: ("message",),
    Ticket.Resolved: ("resolution",),
    Ticket.Reopened: ("reason",),
    Pipeline.Defined: ("name", "stages"),
    Pipeline.StageRenamed: ("label",),
    Pipeline.StageInserted: ("label",),
    Vocabulary.Defined: ("values",),
    Vocabulary.Replaced: ("values",),
    Vocabulary.ValueAdded: ("value",),
    Vocabulary.ValueRetired: ("value",),
    ExchangeRate.Quoted: ("source",),
    ExchangeRate.Corrected: ("source",),
}


def _texts(value: Any) -> list[Any]:
    """The text a stripped field holds: itself, a vocabulary's values, or a pipeline's stage labels."""
    if isinstance(value, list):
        return [v["label"] if isinstance(v, dict) else v for v in value]
    return [value]


def _require_stripped(name: str, value: Any) -> None:
    """Refuse text with spaces around it (blank text is the field's own rule's to refuse: "must not be empty")."""
    for text in _texts(value):
        if isinstance(text, str) and text != text.strip() and text.strip():
            raise Refusal(name, f"{text!r} must not start or end with spaces: a history file is a record of events "
                                "as the commands stored them (stripped), not input to tidy up")


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
    if line.schema.cls in _RATE_EVENTS:
        _rate_in_force_from_its_date(occurred, data["valid_from"])
    rules, facts, stripped = _PLANS[line.schema.name]
    for name in stripped:
        value = data.get(name)
        if type(value) is not str or (value and (value[0].isspace() or value[-1].isspace())):
            _require_stripped(name, value)  # only then: the call for every text field cost ≈ 0.5 µs a line
    for name, rule, text in rules:
        value = data[name]
        if text and type(value) is str and value and not value.isspace():
            continue  # text that `require_text` passes (not blank: `strip()` keeps something): two calls saved
        try:
            rule(value)
        except DomainError as error:
            raise Refusal(name, str(error)) from None
    _require_derived_id(line)
    values = tuple([id_of(data[name]) if reference else data[name] for name, reference in facts])
    if line.schema.cls is Pipeline.Defined:
        values = (values[0], [stage["key"] for stage in values[1]])
    return line.schema.name, id_of(line.subject), line.version, micros(occurred), values


_RATE_EVENTS = (ExchangeRate.Quoted, ExchangeRate.Corrected)


def _rate_in_force_from_its_date(occurred: datetime, valid_from: str) -> None:
    """A rate's business time is 00:00 UTC of its date, as `ExchangeRate` records it: a replay to T then sees
    exactly the rates dated by T."""
    try:
        expected = valid_from_instant(date.fromisoformat(valid_from))
    except ValueError:
        return  # the field rule on valid_from says why
    if occurred != expected:
        raise Refusal("occurred_at", f"a rate's occurred_at is 00:00 UTC of its valid_from, {expected.isoformat()}, "
                                     f"not {occurred.isoformat()}")


# By event type: its envelope and field rules (each marked if it is `require_text` alone), which FACTS (then TERMS) it hands on (and whether each is an id),
# and which fields must be stored stripped (the actor, vocabulary values, STRIPPED), looked up once.
_PLANS = {name: (tuple((field, rule, rule in _TEXT_RULES)
                       for field, rule in (*ENVELOPE_RULES.items(), *FIELD_RULES.get(schema.cls, {}).items())),
                 tuple((field, field in REFERENCES) for field in FACTS.get(schema.cls, ()))
                 + tuple((field, False) for field, _, _ in TERMS.get(schema.cls, ())),
                 ("actor", *(field for field, _, _ in TERMS.get(schema.cls, ())), *STRIPPED.get(schema.cls, ())))
          for name, schema in SCHEMAS.items()}
