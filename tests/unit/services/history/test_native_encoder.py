"""The compiled path of an import worker (`native_encoder`, the crm_native extension) answers exactly what the
Python path answers for a chunk: the same facts, the same first refusal (message and line), the same stored
rows (personal fields compared unsealed: nonces are random) and the same key rows, over export's own lines and
random mutations of them; and it takes export's own lines itself."""

from __future__ import annotations

import base64
import re
import struct
from datetime import datetime, timezone
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.application import CrmApplication
from services.history import import_workers
from services.history.event_lines import SCHEMAS
from services.history.line_decoder import compiled
from services.history.native_encoder import available, native_encoder
from services.history.stored_state import StateEncoders
from services.keys.derived_keys import DerivedKeys, RecordKeys
from services.settings import database_from_url
from tests.unit.services.history.test_import_workers import _typed
from tests.unit.services.history.test_line_decoder import (LINES, ODD_VALUES, _drop, _dump, _paths, _set,
                                                           mutated_lines)

pytestmark = pytest.mark.skipif(not available(), reason="crm_native is not built here (no cargo)")
SECRET = bytes(range(32))
RECORDED = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
_APP = CrmApplication(database_from_url("memory://"))
_KEYS = DerivedKeys(_APP.keys, SECRET)
_ENCODERS = StateEncoders(_APP.mapper, _KEYS.seal_all, RECORDED)
_NATIVE = native_encoder(_APP.mapper, RECORDED, SECRET) if available() else None
_SEAL = re.compile(rb'"pii:v1:([0-9a-f-]{36}):([A-Za-z0-9_=-]+)"')
_KEY_OF = RecordKeys(SECRET)
_HELD: dict[str, bytes] = {}  # keys the key table holds (`test_keys_the_table_holds_are_used_and_bound_alike`)


def _rows(data: bytes) -> list[tuple[bytes, ...]]:
    """The COPY rows' fields, each seal replaced by what it holds."""
    rows, at = [], 0
    while at < len(data):
        (count,), at = struct.unpack_from("!h", data, at), at + 2
        fields = []
        for _ in range(count):
            (size,), at = struct.unpack_from("!i", data, at), at + 4
            fields.append(data[at:at + size])
            at += size
        rows.append((*fields[:3], _SEAL.sub(_opened, fields[3])))
    return rows


def _opened(seal: re.Match[bytes]) -> bytes:
    subject, sealed = seal.group(1).decode(), base64.urlsafe_b64decode(seal.group(2))
    plain = AESGCM(_HELD.get(subject) or _KEY_OF(subject)).decrypt(sealed[:12], sealed[12:], subject.encode())
    return orjson.dumps(["opened", subject, plain.decode()])


def _answer(encoded: tuple[Any, ...]) -> tuple[Any, ...]:
    found, problem, data, keys = encoded
    # facts with the type of every part spelt out: the in-order rules must see the very same values
    return [_typed(facts) for facts in import_workers.unpacked(found)], problem, _rows(data), sorted(keys, key=repr)


def _outcome(encode: Any, *args: Any) -> tuple[Any, ...]:
    try:
        return _answer(encode(*args))
    except Exception as error:  # noqa: BLE001 - the Python path's own crash on a line must be the same too
        return "raised", type(error), str(error)


def _same(lines: list[bytes], look_up: bool = False) -> None:
    python = _outcome(import_workers.encoded_chunk, _KEYS, _ENCODERS, lines, look_up)
    native = _outcome(import_workers.native_encoded_chunk, _NATIVE, _KEYS, _ENCODERS, lines, look_up)
    assert native == python, lines


def test_export_lines_take_the_compiled_path_and_encode_alike() -> None:
    items = _NATIVE.encode(LINES)[0]
    taken = {orjson.loads(line)["type"] for line, item in zip(LINES, items) if item is not None}
    # the history's cost is "1E+3": an amount whose stored text (str(Decimal)) is not its own is the Python path's
    assert taken == {name for name, schema in SCHEMAS.items() if compiled(schema)} - {"crm.Campaign.CostRecorded"}
    _same(LINES)
    _same([line.rstrip(b"\n") for line in LINES])
    _same([b"  " + line for line in LINES])


def test_the_key_is_hmac_sha256_of_the_record_as_record_keys_derives_it() -> None:
    for subject in ("6f9619ff-8b86-d011-b42d-00c04fc964ff", "中文", ""):
        assert _NATIVE.record_key(subject) == RecordKeys(SECRET)(subject)


def test_lines_lacking_fields_a_line_may_lack_encode_alike() -> None:
    for line in LINES:
        record = orjson.loads(line)
        for left_out in SCHEMAS[record["type"]].missing_means:
            data = {name: value for name, value in record["data"].items() if name != left_out}
            _same([orjson.dumps({**record, "data": data})])


def test_every_field_given_each_odd_value_or_left_out_encodes_alike() -> None:
    for line in LINES:
        record = orjson.loads(line)
        for path in [path for path in _paths(record) if path]:
            _same([_dump(_set(orjson.loads(line), path, value), 0) for value in ODD_VALUES])
            _same([_dump(_drop(orjson.loads(line), path), 0)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_lines(), min_size=1, max_size=4), st.data())
def test_chunks_with_mutated_lines_encode_alike(mutated: list[bytes], data: st.DataObject) -> None:
    """A mutated line among export's own: the same first refusal, or the same rows around the line the
    compiled path left to the Python path."""
    lines = list(LINES[:5])
    for line in mutated:
        lines.insert(data.draw(st.integers(0, len(lines))), line)
    _same(lines)


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12) | st.sampled_from(
    ["", " ", "x ", "\u3000x", "x\x1c", "\u0000", "\x7f", "\\", '"', "/", "\u2028", "中文", "\t", "\x1f"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(LINES), st.data(), st.integers(0, 3))
def test_any_text_or_integer_in_any_field_encodes_alike(line: bytes, data: st.DataObject, style: int) -> None:
    """Text with escapes, spaces and control characters, in each spelling; integers at the edges."""
    record = orjson.loads(line)
    name = data.draw(st.sampled_from(sorted(record["data"])))
    record["data"][name] = data.draw(_TEXT | st.integers(-(2 ** 64), 2 ** 64) | st.sampled_from(ODD_VALUES))
    _same([_dump(record, style), line])


def test_keys_the_table_holds_are_used_and_bound_alike() -> None:
    """An import into a log whose key table holds keys: the chunk's records are looked up once; a held key
    seals (not the derived one) and gets a row only to bind the person a line names."""
    app = CrmApplication(database_from_url("memory://"))
    keys = DerivedKeys(app.keys, SECRET)
    encoders = StateEncoders(app.mapper, keys.seal_all, RECORDED)
    native = native_encoder(app.mapper, RECORDED, SECRET)
    records = sorted({orjson.loads(line)["subject"] for line in LINES})
    app.keys.ensure({subject: None for subject in records[::2]})  # every other record holds a key, unbound
    _HELD.update(app.keys.secrets(records))
    try:
        python = _answer(import_workers.encoded_chunk(keys, encoders, LINES, True))
        compiled = _answer(import_workers.native_encoded_chunk(native, keys, encoders, LINES, True))
    finally:
        _HELD.clear()
    assert compiled == python
    assert any(row[0] in set(records[::2]) for row in python[3])  # some held key had a person to bind


def test_a_chunk_whose_facts_are_all_compiled_encodes_alike() -> None:
    """The shortcut of the common chunk: every line's facts made in compiled code, nothing left to Python."""
    items = _NATIVE.encode(LINES)[0]
    compiled_facts = [line for line, item in zip(LINES, items) if type(item) is tuple]
    assert len(compiled_facts) > len(LINES) / 2 and _NATIVE.encode(compiled_facts)[4] == 0
    _same(compiled_facts)
    _same(compiled_facts, look_up=True)


@pytest.mark.parametrize("space", [b"\x0b", b"\x0c"])
def test_a_line_wrapped_in_a_vertical_tab_or_form_feed_is_refused_alike(space: bytes) -> None:
    """Python's `bytes.strip` takes them for white space, JSON does not (orjson refuses the line): the compiled
    path once stripped them too and took lines every other path refuses (second review, P1)."""
    line = LINES[0].rstrip(b"\n")
    for wrapped in (space + line, line + space, space + line + space):
        _same([wrapped])
        assert _NATIVE.encode([wrapped])[0] == [None]


def test_a_line_lacking_a_field_names_the_same_bad_field_as_the_python_path() -> None:
    """A line that leaves out a field it may leave out is completed as `EventSchema.completed` orders it (what
    missing fields mean first, then the line's): the first bad field named is the Python path's (second review,
    P2: a Customer.Registered without `channel`, NUL in both `name` and `region`, named `name` compiled and
    `region` in Python)."""
    tried = 0
    for line in LINES:
        record = orjson.loads(line)
        schema = SCHEMAS[record["type"]]
        texts = [name for name, value in record["data"].items() if isinstance(value, str) and name not in
                 schema.missing_means]
        for left_out in schema.missing_means:
            if left_out not in record["data"] or len(texts) < 2:
                continue
            data = {name: ("a\u0000b" if name in texts else value) for name, value in record["data"].items()
                    if name != left_out}
            _same([orjson.dumps({**record, "data": data})])
            tried += 1
    assert tried
