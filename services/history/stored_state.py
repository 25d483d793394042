"""A checked history line's stored-event state, as the application's mapper would write it, without
building the domain event.

The library's `Mapper` stores `vars(event)` without originator id and version (plus `class_version` when
it is above 1) as compact JSON with `ensure_ascii` off, each value of a registered type tagged as
`{"_type_": name, "_data_": text}`; `PersonalDataMapper` first seals each non-empty personal field with
its record's key (`KeyStore.seal_all`, all of an event's fields in one call). Here that dict is made from the line's JSON values in the class's field order (ids,
times, money and dates are text in the line already; they become the text their transcoding writes)
and dumped with orjson, which writes the same bytes as the library's JSON encoder for these values.
`tests/unit/services/history/test_stored_state.py` holds the two equal for every event type.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, Transcoding, UUIDAsHex
from eventsourcing.utils import get_topic

from domain.personal_data import PERSONAL_FIELDS
from services.history.event_lines import CANONICAL_UUID, CONVERTERS, SCHEMAS, EventSchema, HistoryLine

TAGGED_TYPES = (UUID, datetime, Decimal, date)
NOT_IN_STATE = ("originator_id", "originator_version")  # stored in columns of their own
CANONICAL_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?Z")  # orjson's UTC
Seal = Callable[[str, list[str]], list[str]]  # (subject, plain texts) → sealed texts (`KeyStore.seal_all`)


def iso_time(text: str) -> str:
    """`datetime.fromisoformat(text).isoformat()`, without parsing the common `…Z` forms."""
    if CANONICAL_UTC.fullmatch(text) and text[-8:] != ".000000Z":
        return text[:-1] + "+00:00"
    return datetime.fromisoformat(text).isoformat()


def uuid_hex(text: str) -> str:
    """`UUID(text).hex`, without parsing the canonical form."""
    return text.replace("-", "") if CANONICAL_UUID.fullmatch(text) else UUID(text).hex


FAST_TEXT: dict[type, Callable[[str], str]] = {DatetimeAsISO: iso_time, UUIDAsHex: uuid_hex}


def tag_text(transcoding: Transcoding, convert: Callable[[Any], Any]) -> Callable[[str], str]:
    """The `_data_` of a checked field's tagged form: its value (made by `convert`) as `transcoding` encodes it."""
    fast = FAST_TEXT.get(type(transcoding))
    return fast or (lambda text: transcoding.encode(convert(text)))


def tagged_fields(schema: EventSchema) -> dict[str, type]:
    """The fields of `schema`'s class that hold a value of a tagged type (optional or not), with that type."""
    hints = typing.get_type_hints(schema.cls)
    return {name: kind for name in schema.fields for kind in TAGGED_TYPES
            if kind in (hints[name], *typing.get_args(hints[name]))}


@dataclass(frozen=True)
class StateEncoder:
    """The stored state of one event class, from a checked line's `data`."""

    topic: str
    template: dict[str, Any]  # every key of the state in order, the constant ones filled in
    time_tag: str  # the tag of a line's recorded time
    time_text: Callable[[str], str]  # and its text
    # Each field of a tagged type, its tag and how its text is made: a tuple of three, looked at in one loop,
    # so a tagged value costs one call (a closure making the dict cost one more, ≈ 0.1 µs a value).
    tagged: tuple[tuple[str, str, Callable[[str], str]], ...]
    personal: tuple[str, ...]

    @classmethod
    def of(cls, schema: EventSchema, transcodings: dict[type, Transcoding], recorded: datetime) -> StateEncoder:
        names = [f.name for f in dataclasses.fields(schema.cls) if f.name not in NOT_IN_STATE]
        template: dict[str, Any] = dict.fromkeys(names)
        template.update(schema.envelope, timestamp={"_type_": transcodings[datetime].name,
                                                    "_data_": transcodings[datetime].encode(recorded)})
        class_version = getattr(schema.cls, "class_version", 1)
        if class_version > 1:
            template["class_version"] = class_version
        tagged = tuple((name, transcodings[kind].name, tag_text(transcodings[kind], schema.fields[name]))
                       for name, kind in tagged_fields(schema).items())
        return cls(get_topic(schema.cls), template, transcodings[datetime].name,
                   tag_text(transcodings[datetime], CONVERTERS[datetime]), tagged,
                   PERSONAL_FIELDS.get(schema.cls, ()))

    def state(self, subject: str, data: dict[str, Any], seal: Seal, recorded_at: str | None = None) -> bytes:
        state = self.template.copy()
        state.update(data)  # keys keep the template's order
        if recorded_at is not None:
            state["timestamp"] = {"_type_": self.time_tag, "_data_": self.time_text(recorded_at)}
        for name, tag, text in self.tagged:
            value = state[name]
            if value is not None:
                state[name] = {"_type_": tag, "_data_": text(value)}
        names = [name for name in self.personal if state[name]]
        if names:  # one call per event, as the mapper does
            state.update(zip(names, seal(subject, [state[name] for name in names])))
        return orjson.dumps(state)


class StateEncoders:
    """Every event class's encoder for one import (recorded at `recorded`), matching `mapper`'s output."""

    def __init__(self, mapper: Mapper[UUID], seal: Seal, recorded: datetime) -> None:
        if not isinstance(mapper.transcoder, JSONTranscoder):
            raise TypeError(f"states are encoded for the library's JSONTranscoder, not {type(mapper.transcoder)}")
        transcodings = mapper.transcoder.types
        self._encoders = {name: StateEncoder.of(schema, transcodings, recorded) for name, schema in SCHEMAS.items()}
        self._compressor, self._cipher, self._seal = mapper.compressor, mapper.cipher, seal

    def stored(self, line: HistoryLine) -> tuple[str, bytes]:
        """The topic and stored state of a checked line's event."""
        encoder = self._encoders[line.schema.name]
        state = encoder.state(line.subject, line.data, self._seal, line.recorded_at)
        if self._compressor:
            state = self._compressor.compress(state)
        if self._cipher:
            state = self._cipher.encrypt(state)
        return encoder.topic, state
