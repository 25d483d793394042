"""The sets of values the domain accepts: fixed ones (directions, priorities, statuses), and vocabularies an
installation configures (channels, regions, industries, loss reasons) as events of a `Vocabulary` aggregate.

Why vocabularies are events and not settings: every copy of the log, every import and every shard must
judge a record by the same values, and an as-of answer by the values in force then. Why these kinds: they
are the dimensions reports group by whose values differ between businesses (11 lead origins in a real
export where 8 channels were built in); a lead's source is its acquisition channel (one dimension, one
vocabulary). A kind nobody defined keeps today's behaviour: `DEFAULTS`.

`UNKNOWN` is the explicit value of a dimension real data lacks: always accepted, stored as such, so
reports group it honestly instead of a value being invented.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import CrmAggregate, Meta, require_choice, require_dimension, require_text
from domain.errors import DomainError

ACQUISITION_CHANNELS = ("email", "phone", "web", "social", "event", "referral", "search_ads", "partner")
TOUCH_CHANNELS = ("email", "phone", "visit", "social", "web", "event")
TOUCH_DIRECTIONS = ("inbound", "outbound")
ASSIGNMENT_RULES = ("region", "industry", "round_robin", "manual")
RESPONSE_KINDS = ("impression", "click", "registration", "attendance", "reply")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_STATUSES = ("open", "in_progress", "waiting_customer", "resolved", "closed")

UNKNOWN = "unknown"

ACQUISITION_CHANNEL, TOUCH_CHANNEL, REGION, INDUSTRY, LOSS_REASON = (
    "acquisition_channel", "touch_channel", "region", "industry", "loss_reason")
# How an open kind checks a value: regions and industries are dimensions (unsealed, so no contact details);
# a loss reason stays the free text it always was (a reason quoting a phone number was accepted before).
_OPEN_CHECKS = {REGION: require_dimension, INDUSTRY: require_dimension, LOSS_REASON: require_text}
# kind → (values, open). Channels were closed sets; regions, industries and loss reasons were free text.
DEFAULTS: dict[str, tuple[tuple[str, ...], bool]] = {
    ACQUISITION_CHANNEL: (ACQUISITION_CHANNELS, False),
    TOUCH_CHANNEL: (TOUCH_CHANNELS, False),
    REGION: ((), True),
    INDUSTRY: ((), True),
    LOSS_REASON: ((), True),
}
KINDS = tuple(DEFAULTS)
_WHAT = {ACQUISITION_CHANNEL: "acquisition channel", TOUCH_CHANNEL: "touch channel", REGION: "region",
         INDUSTRY: "industry", LOSS_REASON: "loss reason"}
MAX_VALUES = 500  # a vocabulary is a list people pick from, not a table: 500 is far above any real one
MAX_LENGTH = 200  # as every name a command takes (services/commands/field_types.Name)


def vocabulary_id(kind: str) -> UUID:
    """A vocabulary's stable id, derived from its kind: defining one twice (two imports, two shards) is one."""
    return uuid5(NAMESPACE_URL, f"crm:vocabulary:{kind}")


def check_kind(kind: str) -> str:
    return require_choice(kind, KINDS, "vocabulary kind")


def check_value(kind: str, value: str) -> str:
    """A value that may enter vocabulary `kind`: a dimension (shown in reports, stored unsealed), not `unknown`."""
    value = require_dimension(value, _WHAT[kind])
    if len(value) > MAX_LENGTH:
        raise DomainError(f"a value of a vocabulary has at most {MAX_LENGTH} characters")
    if value == UNKNOWN:
        raise DomainError(f"{UNKNOWN!r} is always accepted; it is not a value of a vocabulary")
    return value


def check_values(kind: str, values: Iterable[str]) -> list[str]:
    checked = [check_value(kind, v) for v in values]
    if len(set(checked)) != len(checked):
        raise DomainError(f"the values of a vocabulary must be unique: {checked}")
    if len(checked) > MAX_VALUES:
        raise DomainError(f"a vocabulary holds at most {MAX_VALUES} values")
    return checked


@dataclass(frozen=True)
class Terms:
    """The values of one kind in force: a closed kind accepts only `values`; an open one any text its kind
    allows. `unknown` (or nothing) is always accepted and stored as `unknown`."""

    kind: str
    values: tuple[str, ...]
    open: bool

    @classmethod
    def default(cls, kind: str) -> Terms:
        values, is_open = DEFAULTS[check_kind(kind)]
        return cls(kind, values, is_open)

    def check(self, value: str | None, what: str | None = None) -> str:
        """`value` as stored: `unknown` when absent, else a value this vocabulary accepts (or a refusal)."""
        what = what or _WHAT[self.kind]
        if value is None or (isinstance(value, str) and not value.strip()):
            return UNKNOWN
        if not isinstance(value, str):
            raise DomainError(f"{what} must be text, not {type(value).__name__}")
        value = value.strip()
        if value == UNKNOWN:
            return UNKNOWN
        if self.open:
            return _OPEN_CHECKS.get(self.kind, require_dimension)(value, what)
        return require_choice(value, self.values, what)


class Vocabularies:
    """The terms of every kind an installation has (a kind not defined has its default): what domain methods
    receive, as `Deal.open` receives its `Pipeline`."""

    def __init__(self, terms: Mapping[str, Terms] | None = None) -> None:
        self._terms = dict(terms or {})

    def __getitem__(self, kind: str) -> Terms:
        return self._terms.get(kind) or Terms.default(kind)


DEFAULT_VOCABULARIES = Vocabularies()


class _Historic(Vocabularies):
    """Every kind open: for values recorded before and carried on (a converted lead's region, industry and
    channel become its customer's even if its channel was retired since)."""

    def __getitem__(self, kind: str) -> Terms:
        return Terms(check_kind(kind), (), True)


HISTORIC: Vocabularies = _Historic()


class Vocabulary(CrmAggregate):
    """The values an installation accepts for one kind: defined, replaced, values added or retired.

    A retired value stays in every record that has it (history keeps its meaning); new records may not use it."""

    class Defined(CrmAggregate.Created):
        kind: str
        values: list[str]
        open: bool

        def apply(self, vocabulary: Vocabulary) -> None:
            vocabulary.kind, vocabulary.values, vocabulary.open = self.kind, list(self.values), self.open
            vocabulary.retired = []

    class Replaced(CrmAggregate.Event):
        values: list[str]
        open: bool

        def apply(self, vocabulary: Vocabulary) -> None:
            dropped = [v for v in vocabulary.values if v not in self.values]
            vocabulary.retired = [v for v in vocabulary.retired if v not in self.values] + dropped
            vocabulary.values, vocabulary.open = list(self.values), self.open

    class ValueAdded(CrmAggregate.Event):
        value: str

        def apply(self, vocabulary: Vocabulary) -> None:
            vocabulary.values.append(self.value)
            vocabulary.retired = [v for v in vocabulary.retired if v != self.value]

    class ValueRetired(CrmAggregate.Event):
        value: str

        def apply(self, vocabulary: Vocabulary) -> None:
            vocabulary.values.remove(self.value)
            vocabulary.retired.append(self.value)

    @classmethod
    def define(cls, kind: str, values: Iterable[str], open: bool, meta: Meta) -> Vocabulary:  # noqa: A002
        check_kind(kind)
        return cls._open(cls.Defined, meta, id=vocabulary_id(kind), kind=kind, values=check_values(kind, values),
                         open=_flag(open))

    @classmethod
    def from_defaults(cls, kind: str, meta: Meta) -> Vocabulary:
        """The vocabulary as it is before anyone defined it (its default values), as a new aggregate."""
        values, is_open = DEFAULTS[check_kind(kind)]
        return cls.define(kind, values, is_open, meta)

    @property
    def terms(self) -> Terms:
        return Terms(self.kind, tuple(self.values), self.open)

    def replace(self, values: Iterable[str], open: bool, meta: Meta) -> None:  # noqa: A002
        checked = check_values(self.kind, values)
        if (checked, _flag(open)) == (self.values, self.open):
            raise DomainError(f"vocabulary {self.kind!r} already has these values")
        self._record(self.Replaced, meta, values=checked, open=open)

    def add(self, value: str, meta: Meta) -> None:
        value = check_value(self.kind, value)
        require_absent(self.kind, self.values, value)
        if len(self.values) >= MAX_VALUES:
            raise DomainError(f"a vocabulary holds at most {MAX_VALUES} values")
        self._record(self.ValueAdded, meta, value=value)

    def retire(self, value: str, meta: Meta) -> None:
        require_present(self.kind, self.values, value)
        self._record(self.ValueRetired, meta, value=value)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "values": list(self.values), "open": self.open, "retired": list(self.retired)}


def describe(kind: str, vocabulary: Vocabulary | None) -> dict[str, Any]:
    """What `crm vocabulary show` and GET /vocabularies/{kind} answer: the kind's values in force, whether it is
    open, its retired values, and whether an installation defined it (else these are its defaults)."""
    if vocabulary is None:
        values, is_open = DEFAULTS[check_kind(kind)]
        return {"kind": kind, "values": list(values), "open": is_open, "retired": [], "defined": False, "version": 0}
    return {**vocabulary.as_dict(), "defined": True, "version": vocabulary.version}


def require_recorded(kind: str, vocabulary: Vocabulary | None, value: str) -> str:
    """A value to filter reports by must be one records of `kind` may hold: a default, a value in force or
    retired, or `unknown` (a typo gives a refusal, not an empty report)."""
    known = {*DEFAULTS[check_kind(kind)][0], UNKNOWN}
    if vocabulary is not None:
        known |= {*vocabulary.values, *vocabulary.retired}
    return require_choice(value, frozenset(known), _WHAT[kind])


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise DomainError(f"open must be true or false, not {value!r}")
    return value


def require_absent(kind: str, values: Iterable[str], value: str) -> None:
    """A value to add must not be in force already (`add` and `crm import`'s checks ask this)."""
    if value in values:
        raise DomainError(f"vocabulary {kind!r} already has {value!r}")


def require_present(kind: str, values: Iterable[str], value: str) -> None:
    """A value to retire must be in force."""
    if value not in values:
        raise DomainError(f"vocabulary {kind!r} has no value {value!r} in force")
