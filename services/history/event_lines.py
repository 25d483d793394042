"""One line of a history file (what `services.history.exporter` writes), checked against its event class.

`{"type": "crm.Deal.StageChanged", "subject": "<aggregate uuid>", "version": 3, "data": {...}}`: `data`
holds the event's own fields as `gateways.kafka.cloudevents.event_data` gives them, each converted with
the event class's type hint. Checking a line builds no domain event; `parse_event` builds one.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import IO, Any, NamedTuple
from uuid import UUID

import orjson
from eventsourcing.utils import get_topic

from domain.base import CrmAggregate
from domain.campaign import Campaign
from domain.customer import Customer
from domain.deal import Deal
from domain.exchange_rates import ExchangeRate
from domain.lead import Lead
from domain.pipeline import Pipeline
from domain.reminder_rules import Reminder
from domain.segment_change_rules import SegmentChange
from domain.targets import OwnerTeam, Target
from domain.ticket import Ticket
from domain.vocabulary import UNKNOWN, Vocabulary
from services.event_envelope import ENVELOPE_FIELDS
from services.strict_json import DuplicateKey, loads_compact

AGGREGATES = (Customer, Lead, Deal, Campaign, Ticket, Pipeline, Vocabulary, ExchangeRate, Reminder, Target, OwnerTeam,
              SegmentChange)
LINE_KEYS = {"type", "subject", "version", "data"}
RECORDED = "recorded_at"  # optional: when the event was recorded in the log it was exported from
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # as str(UUID) writes it


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def _parsed(parse: Callable[[str], Any], what: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        try:
            return parse(_text(value))
        except (ValueError, InvalidOperation):
            raise ValueError(f"{value!r} is not {what}") from None
    return convert


def zoned_instant(text: str) -> datetime:
    """An ISO 8601 time that names its zone (ValueError: not one)."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return parsed


def _exactly(kind: type) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if type(value) is not kind:
            raise ValueError(f"{value!r} is not of type {kind.__name__}")
        return value
    return convert


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    str: _text,
    int: _exactly(int),
    bool: _exactly(bool),
    datetime: _parsed(zoned_instant, "an ISO 8601 time with a zone"),
    date: _parsed(date.fromisoformat, "an ISO 8601 date"),
    Decimal: _parsed(Decimal, "a decimal number"),
    UUID: _parsed(UUID, "a UUID"),
}


# Fields a line may leave out, as real exports lack them, and what is then stored (what the command stores).
_UNKNOWN_PARTY = {"region": UNKNOWN, "industry": UNKNOWN, "channel": UNKNOWN}
ABSENT_MEANS: dict[type, dict[str, Any]] = {
    Customer.Registered: _UNKNOWN_PARTY,
    Lead.Captured: {"name": "", **_UNKNOWN_PARTY},
    Customer.TouchLogged: {"channel": UNKNOWN},
    Lead.Contacted: {"channel": UNKNOWN},
    Deal.Lost: {"reason": UNKNOWN},
    Campaign.Planned: {"channel": UNKNOWN},
    Ticket.Opened: {"channel": UNKNOWN},
}


_IDS = {CONVERTERS[UUID]}  # the converters of UUID fields, optional or not


def converter(hint: Any) -> Callable[[Any], Any]:
    """How to turn the JSON value of a field with type hint `hint` into its Python value."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        convert = _optional(converter(inner))
        if inner is UUID:
            _IDS.add(convert)
        return convert
    container = typing.get_origin(hint) or hint
    if container in (list, dict):
        return _exactly(container)
    return CONVERTERS[hint]


def canonical_uuid(value: Any) -> str:
    """The id as `str(UUID(value))` writes it; ValueError if `value` is no UUID."""
    if type(value) is str and CANONICAL_UUID.fullmatch(value):
        return value
    return str(CONVERTERS[UUID](value))


@dataclass(frozen=True)
class EventSchema:
    """How one event class's fields are read from a line's `data`."""

    name: str  # the line's "type", e.g. crm.Deal.StageChanged
    cls: type
    envelope: dict[str, str]  # fields not in `data`: a created event's aggregate topic
    fields: dict[str, Callable[[Any], Any]]  # in the class's field order
    absent: dict[str, Any]  # fields real exports leave out, and their value then (`ABSENT_MEANS`)
    # The fields added since version 1, with the value an upcast gives them: a line may lack them.
    added: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Both at once, what `completed` fills in (`added` wins: an upcast value is what the log stores).
    missing_means: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, aggregate: type, event_class: type) -> EventSchema:
        hints = typing.get_type_hints(event_class)
        names = [f.name for f in dataclasses.fields(event_class) if f.name not in ENVELOPE_FIELDS]
        created = issubclass(event_class, CrmAggregate.Created)
        return cls(f"crm.{event_class.__qualname__}", event_class,
                   {"originator_topic": get_topic(aggregate)} if created else {},
                   {name: converter(hints[name]) for name in names}, absent := ABSENT_MEANS.get(event_class, {}),
                   added := added_fields(event_class), {**absent, **added})

    def completed(self, data: dict[str, Any]) -> dict[str, Any]:
        """`data` with what a line may lack: the fields added since version 1 (as its upcasters set them) and
        those real exports leave out (`ABSENT_MEANS`)."""
        if not self.missing_means or self.missing_means.keys() <= data.keys():
            return data
        return {**self.missing_means, **data}

    def check(self, data: dict[str, Any]) -> None:
        """ValueError naming what is wrong with `data`: missing or unknown fields, or the first that won't convert."""
        if data.keys() != self.fields.keys():
            missing, unknown = self.fields.keys() - data.keys(), data.keys() - self.fields.keys()
            raise ValueError("data " + "; ".join(
                f"{what} {', '.join(sorted(names))}" for what, names in (("lacks", missing), ("has unknown", unknown))
                if names
            ))
        for name, convert in self.fields.items():
            value = data[name]
            if type(value) is str and (convert is _text or (convert in _IDS and CANONICAL_UUID.fullmatch(value))):
                continue  # most fields are text, many ids as `str(UUID)` writes them: skip the call (≈ 1 µs an id)
            try:
                convert(value)
            except ValueError as error:
                raise ValueError(f"field {name!r}: {error}") from None

    def build(self, subject: UUID, version: int, data: dict[str, Any], recorded: datetime) -> Any:
        """The domain event of checked `data`, recorded at `recorded`."""
        values = {name: convert(data[name]) for name, convert in self.fields.items()}
        return self.cls(originator_id=subject, originator_version=version, timestamp=recorded,
                        **self.envelope, **values)


def added_fields(event_class: type) -> dict[str, Any]:
    """The fields an event class gained after version 1, with the value its upcasters give an old event
    (`Deal.Lost`'s competitor ""): a history line written before may lack them, as a stored event does."""
    state: dict[str, Any] = {}
    for version in range(1, getattr(event_class, "class_version", 1)):
        getattr(event_class, f"upcast_v{version}_v{version + 1}")(state)
    return state


def event_classes() -> dict[str, tuple[type, type]]:
    """Every event of the catalogue by its type name: `crm.Deal.StageChanged` → (Deal, Deal.StageChanged)."""
    return {
        f"crm.{value.__qualname__}": (aggregate, value)
        for aggregate in AGGREGATES for name, value in vars(aggregate).items()
        if isinstance(value, type) and issubclass(value, aggregate.Event) and name not in ("Event", "Created")
    }


SCHEMAS = {name: EventSchema.of(aggregate, cls) for name, (aggregate, cls) in event_classes().items()}


class HistoryLine(NamedTuple):
    """A checked line: its event class, its aggregate (as `str(UUID)` writes it), version and fields."""

    schema: EventSchema
    subject: str
    version: int
    data: dict[str, Any]
    recorded_at: str | None = None  # as the line gives it (None: the import's own time)


def read_line(line: bytes) -> HistoryLine:
    """The checked content of one line; ValueError says what is wrong."""
    try:
        record = loads_compact(line)  # ≈ 0.6 µs more a line for `crm export`'s own lines
    except orjson.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error})") from None
    except DuplicateKey as error:
        raise ValueError(f"not accepted JSON ({error})") from None
    if not isinstance(record, dict) or record.keys() - {RECORDED} != LINE_KEYS:
        raise ValueError('expected an object with exactly "type", "subject", "version", "data" '
                         f'and optionally "{RECORDED}"')
    schema = SCHEMAS.get(record["type"]) if isinstance(record["type"], str) else None
    if schema is None:
        raise ValueError(f"unknown event type {record['type']!r}")
    version = record["version"]
    if type(version) is not int or version < 1:
        raise ValueError(f"version {version!r} is not a positive integer")
    data = record["data"]
    if not isinstance(data, dict):
        raise ValueError('"data" is not an object')
    data = schema.completed(data)
    try:
        subject = canonical_uuid(record["subject"])
    except ValueError as error:
        raise ValueError(f"subject: {error}") from None
    schema.check(data)
    recorded_at = record.get(RECORDED)
    if recorded_at is not None:
        try:
            CONVERTERS[datetime](recorded_at)
        except ValueError as error:
            raise ValueError(f"{RECORDED}: {error}") from None
    return HistoryLine(schema, subject, version, data, recorded_at)


def reread_line(line: bytes) -> HistoryLine:
    """A line `read_line` accepted before, read again without checking it."""
    record = orjson.loads(line)
    schema = SCHEMAS[record["type"]]
    return HistoryLine(schema, canonical_uuid(record["subject"]), record["version"], schema.completed(record["data"]),
                       record.get(RECORDED))


def parse_event(line: bytes, recorded: datetime) -> Any:
    """The domain event one line describes, recorded when the line says, else at `recorded`; ValueError
    says what is wrong."""
    schema, subject, version, data, recorded_at = read_line(line)
    return schema.build(UUID(subject), version, data, zoned_instant(recorded_at) if recorded_at else recorded)


def numbered_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of every line that is not blank."""
    for number, line in enumerate(stream, 1):
        if not line.isspace():  # as `line.strip()` tells, without copying the line
            yield number, line
