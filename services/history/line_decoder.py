"""`event_lines.read_line` in compiled code for the lines `crm export` writes, and the old path for the rest.

A history line is checked by a per-event-type msgspec Struct (msgspec: a well-kept C library that decodes
JSON straight into typed records): the line's type picks its Struct (a tagged union), which requires exactly
the event's fields with their JSON types (text, integers within orjson's range, booleans, text lists and
maps), ids in `str(UUID)`'s form and no field unknown. Parsing and those checks cost ≈ 1 µs a line instead of
≈ 4 µs of Python (`read_line`'s orjson, duplicate-key check, key sets and per-field loop).

A line is taken by this fast path only when **encoding what was decoded gives the line back byte for byte**:
then no key repeats (re-encoding a record cannot repeat one: that replaces `strict_json.loads_compact`'s
orjson dump), nothing was coerced, and orjson reads the very same values (`read_line`'s parser). Times,
dates and amounts are still checked by `read_line`'s own converters. Any line the fast path does not take —
another key order, an upper-case id, a duplicate key, bad JSON, any refusal — goes to `read_line` itself, so
every refusal keeps its exact message, and a line is accepted only if `read_line` would accept it, with the
same value (`tests/unit/services/history/test_line_decoder.py` holds the two equal over random and mutated
lines).

A field a line may leave out (`EventSchema.missing_means`: real exports lack it, or it was added since
version 1) is `msgspec.UNSET` when absent, which encoding leaves out again, so such a line still round-trips
byte for byte and is completed as `read_line` completes it. Before, each such line went to `read_line`: in the
benchmark's 1M history (exported before `variant` was added) that was 31 % of the lines, at ≈ 4 µs each.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Union
from uuid import UUID

import msgspec

from services.history.event_lines import RECORDED, SCHEMAS, EventSchema, HistoryLine, read_line, zoned_instant

# orjson reads integers outside [-2**63, 2**64 - 1] as floats (which `read_line` refuses), msgspec bounds
# only within int64: the fast path takes the int64 ones, `read_line` sees the rest.
_INT = Annotated[int, msgspec.Meta(ge=-(2 ** 63), le=2 ** 63 - 1)]
_ID = Annotated[str, msgspec.Meta(pattern=r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")]
_VERSION = Annotated[int, msgspec.Meta(ge=1, le=2 ** 63 - 1)]
# A type hint of an event's field → what the fast path requires of its JSON value, and which checks of
# `read_line`'s converters still run on it in Python (times, dates and amounts are text in the line).
_JSON_TYPES: dict[Any, Any] = {str: str, int: _INT, bool: bool, datetime: str, date: str, Decimal: str, UUID: _ID,
                               dict[str, str]: dict[str, str], list[str]: list[str],
                               list[dict[str, str]]: list[dict[str, str]]}
# The parse `read_line`'s converter of each such type wraps (`event_lines.CONVERTERS`): called bare, as the
# fast path knows the value is text and any failure sends the line to `read_line` (≈ 0.1 µs a call saved).
_PARSES: dict[Any, Callable[[str], Any]] = {datetime: zoned_instant, date: date.fromisoformat, Decimal: Decimal}


def _json_type(hint: Any) -> Any:
    """What the fast path requires of the JSON value of a field with type hint `hint`."""
    if typing.get_origin(hint) in (Union, type(int | None)):
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return Union[_json_type(inner), None]
    return _JSON_TYPES[hint]


def _converted(hint: Any) -> Any:
    """The type whose converter in `read_line` must still run on the field's text, or None."""
    inner = [arg for arg in typing.get_args(hint) if arg is not type(None)] or [hint]
    return inner[0] if inner[0] in _PARSES else None


def _field(schema: EventSchema, name: str, hint: Any) -> tuple[Any, ...]:
    """A data field of the Struct: UNSET when a line leaves out a field it may leave out (and then left out
    again by encoding, so the round trip still holds)."""
    if name in schema.missing_means:
        return name, Union[_json_type(hint), msgspec.UnsetType], msgspec.UNSET
    return name, _json_type(hint)


def _line_struct(schema: EventSchema) -> type[msgspec.Struct]:
    """The Struct of one event type's lines: its tag is the line's "type"; fields in `crm export`'s order."""
    hints = typing.get_type_hints(schema.cls)
    # kw_only: a field a line may leave out (it has a default) may precede required ones; the order stays
    data = msgspec.defstruct(f"{schema.name}.data", [_field(schema, name, hints[name]) for name in schema.fields],
                             forbid_unknown_fields=True, kw_only=True)
    return msgspec.defstruct(schema.name, [("subject", _ID), ("version", _VERSION), (RECORDED, Union[str, None], None),
                                           ("data", data)],
                             tag_field="type", tag=schema.name, forbid_unknown_fields=True, omit_defaults=True,
                             kw_only=True)


def _conversions(schema: EventSchema) -> tuple[tuple[str, Callable[[str], Any]], ...]:
    """The fields whose text `read_line` still converts (times, dates, amounts), with its converter."""
    hints = typing.get_type_hints(schema.cls)
    return tuple((name, _PARSES[_converted(hints[name])]) for name in schema.fields if _converted(hints[name]))


def compiled(schema: EventSchema) -> bool:
    """Whether lines of `schema` take the compiled path: not when a field's type has no fast check here (a
    pipeline's stage dicts, its dwell thresholds: rare reference data, left to `read_line`, whose checks of
    such values — big integers, floats — the fast path would not repeat)."""
    hints = typing.get_type_hints(schema.cls)
    try:
        [_json_type(hints[name]) for name in schema.fields]
    except KeyError:
        return False
    return True


_STRUCTS = {name: _line_struct(schema) for name, schema in SCHEMAS.items() if compiled(schema)}
_PLANS = {struct: (SCHEMAS[name], _conversions(SCHEMAS[name]), bool(SCHEMAS[name].missing_means))
          for name, struct in _STRUCTS.items()}
_DECODER = msgspec.json.Decoder(Union[tuple(_STRUCTS.values())])  # type: ignore[valid-type]
_ENCODE = msgspec.json.Encoder().encode
_as_dict = msgspec.structs.asdict
_UNSET = msgspec.UNSET


def decoded_line(line: bytes) -> HistoryLine:
    """`read_line(line)`, in compiled code when the line is as `crm export` writes it."""
    try:
        record = _DECODER.decode(line)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return read_line(line)
    if _ENCODE(record) != line.strip():
        return read_line(line)  # another spelling of the line (or a repeated key): read_line decides
    schema, conversions, may_lack = _PLANS[type(record)]
    data = _as_dict(record.data)
    if may_lack and _UNSET in data.values():  # completed as read_line completes it: same values, same order
        data = schema.completed({name: value for name, value in data.items() if value is not _UNSET})
    try:
        for name, convert in conversions:
            value = data[name]
            if value is not None:
                convert(value)
        if record.recorded_at is not None:
            zoned_instant(record.recorded_at)
    except (ValueError, ArithmeticError):  # decimal.InvalidOperation is an ArithmeticError
        return read_line(line)  # its message names the field
    return HistoryLine(schema, record.subject, record.version, data, record.recorded_at)
