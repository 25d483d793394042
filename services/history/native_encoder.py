"""The import worker's per-line work in compiled code (the `crm_native` Rust extension, built by PyO3 and
maturin from services/history/native/), when it is installed; None here and the Python path runs otherwise.

One call per chunk (`Encoder.encode(lines)`): each line exactly as `crm export` writes it is read by the
extension's own reader of that one compact JSON form (src/canonical.rs: any other spelling, a repeated key,
white space JSON does not allow, is not taken), its fields checked against its event type (JSON types; times in
orjson's UTC form, dates, amounts and ids in the one spelling their stored text keeps unchanged), and its stored
event made as a row of PostgreSQL's binary COPY format: the state as `stored_state.StateEncoder` writes it,
personal fields sealed with AES-256-GCM (aes-gcm crate) under HMAC-SHA256(import secret, record id) (hmac and
sha2 crates, as `derived_keys.RecordKeys`), or the key the key table holds. It answers each line's field facts
when every rule of its type is one it knows and surely passes (`field_checks.RULE_KINDS`), else the line's
`HistoryLine` for `field_facts` (Python: a line lacking a field is completed by `EventSchema.completed`, so a
refusal names the same field), or None: that line is the Python path's, so every refusal keeps its message.
The specs handed to it here come from the same schemas and transcodings the Python path
uses; `tests/unit/services/history/test_native_encoder.py` holds the two paths equal.
"""

from __future__ import annotations

import logging
import os
import typing
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Union
from uuid import UUID

import orjson
from eventsourcing.persistence import JSONTranscoder, Mapper

from domain.personal_data import PERSON_FIELD, PERSONAL_FIELDS
from services.history.event_lines import SCHEMAS, EventSchema, HistoryLine
from services.history.line_decoder import compiled
from services.history.rules import field_checks
from services.history.stored_state import StateEncoder, tagged_fields

try:
    import crm_native
except ImportError:  # not built (no cargo where it was installed): the Python path
    crm_native = None

log = logging.getLogger(__name__)
KINDS: dict[Any, str] = {str: "str", int: "int", bool: "bool", datetime: "datetime", date: "date", Decimal: "Decimal",
                         UUID: "UUID", dict[str, str]: "dict[str,str]", list[str]: "list[str]",
                         list[dict[str, str]]: "list[dict[str,str]]"}
PLAIN = (str, int, bool, type(None))  # what a missing field may mean for the compiled path to fill it in


OFF = "CRM_IMPORT_NATIVE"  # "0": the Python path even where the extension is built (to compare the two)


def available() -> bool:
    return crm_native is not None and os.environ.get(OFF, "1") != "0"


def _kind(hint: Any) -> tuple[str, bool]:
    """The compiled path's name of a field's type, and whether it may be null ("?" : no compiled check)."""
    if typing.get_origin(hint) in (Union, type(int | None)):
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return KINDS.get(inner, "?"), True
    return KINDS.get(hint, "?"), False


def _spec(schema: EventSchema, transcodings: dict[type, Any], recorded: datetime) -> tuple[Any, ...]:
    hints, tags = typing.get_type_hints(schema.cls), tagged_fields(schema)
    fields = []
    for name in schema.fields:
        kind, nullable = _kind(hints[name])
        meaning = schema.missing_means.get(name, ...)
        missing = (meaning, orjson.dumps(meaning).decode()) if type(meaning) in PLAIN else None
        fields.append((name, kind, nullable, transcodings[tags[name]].name if name in tags else None, missing))
    encoder = StateEncoder.of(schema, transcodings, recorded)
    state = [(key, "field", None) if key in schema.fields else (key, "time", None) if key == "timestamp"
             else (key, "const", orjson.dumps(value).decode()) for key, value in encoder.template.items()]
    cls = schema.cls
    return (schema.name, schema, encoder.topic, fields, state,
            list(PERSONAL_FIELDS.get(cls, ())), PERSON_FIELD.get(cls), cls in PERSONAL_FIELDS, _facts_plan(schema))


def _facts_plan(schema: EventSchema) -> tuple[Any, ...] | None:
    """What `field_checks.field_facts` does for lines of `schema`, for the compiled path to do when each rule
    is one it knows (`field_checks.RULE_KINDS`, text) and the line surely passes it; None: the type's
    facts are `field_facts`'s (exchange rates, pipelines, rules it does not know)."""
    if schema.cls in field_checks._RATE_EVENTS or schema.name == "crm.Pipeline.Defined":
        return None
    rules, facts, stripped = field_checks._PLANS[schema.name]
    checks = []
    for name, rule, text in rules:
        kind, argument = ("text", None) if text else field_checks.RULE_KINDS.get(rule, ("?", None))
        if kind == "?":
            return None
        checks.append((name, kind, sorted(argument) if argument is not None else []))
    hints = typing.get_type_hints(schema.cls)
    if any(name not in schema.fields or (reference and _kind(hints[name])[0] != "UUID") for name, reference in facts):
        return None
    if any(name not in schema.fields for name in (*stripped, *(name for name, _, _ in checks))):
        return None
    return list(stripped), checks, list(facts), schema.cls in field_checks.KINDS


def native_encoder(mapper: Mapper[UUID], recorded: datetime, secret: bytes) -> Any:
    """The compiled encoder of one import's lines (None: not installed, or states are compressed or
    encrypted whole, which it does not do)."""
    if not available() or mapper.compressor or mapper.cipher or not isinstance(mapper.transcoder, JSONTranscoder):
        return None
    transcodings = mapper.transcoder.types
    specs = [_spec(schema, transcodings, recorded) for schema in SCHEMAS.values() if compiled(schema)]
    time = transcodings[datetime]
    stamp = orjson.dumps({"_type_": time.name, "_data_": time.encode(recorded)}).decode()
    return crm_native.Encoder(specs, HistoryLine, time.name, stamp, secret)
