"""The compiled line decoder answers exactly what `read_line` answers: the same value for every line it
accepts, the same refusal (type and message) for every line it refuses, over export's own lines and random
mutations of them (bytes, JSON values, keys, spellings)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.application import CrmApplication
from services.history import line_decoder
from services.history.event_lines import SCHEMAS, read_line
from services.history.exporter import history_line
from services.settings import database_from_url
from tests.support.history_of_every_event import record_every_event


def _export_lines() -> list[bytes]:
    app = CrmApplication(database_from_url("memory://"))
    record_every_event(app)
    lines = [history_line(event) for _, event in app.read_log()]
    app.close()
    return lines


LINES = _export_lines()


def _answer(read: Any, line: bytes) -> tuple[Any, ...]:
    """What a decoder makes of `line`: its checked line, types of values included, or its refusal."""
    try:
        checked = read(line)
    except Exception as error:  # noqa: BLE001 — any refusal, compared by type and message
        return "refused", type(error), str(error)
    return "read", checked.schema.name, checked.subject, repr(checked.version), repr(list(checked.data.items())), \
        checked.recorded_at


def _same(line: bytes) -> None:
    assert _answer(line_decoder.decoded_line, line) == _answer(read_line, line), line


@pytest.fixture
def no_fallback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def fail(line: bytes) -> None:
        raise AssertionError(f"read_line was asked: {line[:200]!r}")
    monkeypatch.setattr(line_decoder, "read_line", fail)
    yield


def test_every_event_type_as_export_writes_it_takes_the_compiled_path(no_fallback: None) -> None:
    assert {orjson.loads(line)["type"] for line in LINES} == set(SCHEMAS)
    open_shaped = {name for name, schema in SCHEMAS.items() if not line_decoder.compiled(schema)}
    assert open_shaped == {"crm.Pipeline.Defined", "crm.Pipeline.StageRemindersSet",  # read_line reads those
                           "crm.Campaign.VariantsDefined"}
    for line in LINES:
        if orjson.loads(line)["type"] not in open_shaped:
            assert line_decoder.decoded_line(line).data == orjson.loads(line)["data"]


def test_lines_lacking_fields_a_line_may_lack_take_the_compiled_path_and_read_alike() -> None:
    """Real exports (and the benchmark's history, exported before `variant` existed) leave out the fields of
    `missing_means`: such lines are completed in compiled code, exactly as `read_line` completes them."""
    lacking = 0
    for line in LINES:
        record = orjson.loads(line)
        schema = SCHEMAS[record["type"]]
        if not line_decoder.compiled(schema) or not schema.missing_means:
            continue
        for left_out in [[name] for name in schema.missing_means] + [list(schema.missing_means)]:
            data = {name: value for name, value in record["data"].items() if name not in left_out}
            shorter = orjson.dumps({**record, "data": data}) + b"\n"
            _same(shorter)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(line_decoder, "read_line", lambda line: pytest.fail(f"read_line was asked: {line!r}"))
                assert line_decoder.decoded_line(shorter).data == read_line(shorter).data
            lacking += 1
    assert lacking >= 20


def test_export_lines_read_alike() -> None:
    for line in LINES:
        _same(line)
        _same(line.rstrip(b"\n"))
        _same(b"  " + line)


# Values a field may be given instead of its own: other JSON types, integers at orjson's edges, ids and
# times in other spellings, text with spaces, NUL, lone surrogates.
ODD_VALUES: list[Any] = [None, True, False, 0, 1, -1, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, 2 ** 64, -(2 ** 63) - 1, 1.0,
                         1.5, "", " ", "x", " x ", "\u0000", "7", "1E+3", "NaN", "-5", "2026-02-30", "2026-03-01",
                         "2026-03-01T09:00:00", "2026-03-01T09:00:00Z", "2026-03-01T09:00:00.000000Z",
                         "2026-03-01T09:00:00+08:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
                         "6F9619FF-8B86-D011-B42D-00C04FC964FF", "6f9619ff8b86d011b42d00c04fc964ff",
                         "6f9619ff-8b86-d011-b42d-00c04fc964ff", "{6f9619ff-8b86-d011-b42d-00c04fc964ff}",
                         [], ["a"], [" a"], [1], {}, {"a": "b"}, {"a": 1}, {"key": "k", "label": "l"}, "中文",
                         "\ud800"]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*path, index))


def _set(record: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    holder = record
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = value
    return record


def _drop(record: Any, path: tuple[Any, ...]) -> Any:
    holder = record
    for step in path[:-1]:
        holder = holder[step]
    del holder[path[-1]]
    return record


def _dump(record: Any, style: int) -> bytes:
    """The record in one of several spellings: orjson's, the standard library's (spaces, ASCII escapes)."""
    if style == 0:
        try:
            return orjson.dumps(record)
        except TypeError:  # a lone surrogate: as the standard library writes it, raw
            style = 2
    return json.dumps(record, ensure_ascii=style == 1, separators=(",", ":") if style == 2 else None).encode(
        "utf-8", "surrogatepass")


@st.composite
def mutated_lines(draw: st.DrawFn) -> bytes:
    line = draw(st.sampled_from(LINES))
    kind = draw(st.sampled_from(["value", "drop", "add", "duplicate", "reorder", "bytes", "respell"]))
    if kind == "bytes":
        at = draw(st.integers(0, len(line)))
        cut = draw(st.integers(0, 3))
        insert = draw(st.sampled_from([b"", b'"', b"\\", b"{", b"}", b",", b":", b" ", b"0", b"-", b"\\u0000", b"e",
                                       b"\xff", b"\xed\xa0\x80", "中".encode(), b"\\ud800", b"A", b"null"]))
        return line[:at] + insert + line[at + cut:]
    record = orjson.loads(line)
    paths = [path for path in _paths(record) if path]
    path = draw(st.sampled_from(paths))
    if kind == "value":
        record = _set(record, path, draw(st.sampled_from(ODD_VALUES)))
    elif kind == "drop":
        record = _drop(record, path)
    elif kind == "add":
        holder = record if len(path) == 1 or not isinstance(record.get("data"), dict) else record["data"]
        holder[draw(st.sampled_from(["extra", "type", "version", "actor", "recorded_at", "_type_"]))] = \
            draw(st.sampled_from(ODD_VALUES))
    elif kind == "reorder":
        record = dict(reversed(record.items())) if len(path) == 1 else \
            _set(record, ("data",), dict(reversed(record["data"].items())))
    text = _dump(record, draw(st.integers(0, 3)) if kind == "respell" else 0)
    if kind == "duplicate":  # a key given twice, the copy first or last, at the top or in "data"
        key = draw(st.sampled_from(["type", "subject", "version", "data", "recorded_at", "occurred_at", "actor"]))
        pair = b'"' + key.encode() + b'":' + _dump(draw(st.sampled_from([*ODD_VALUES, record.get(key)])), 0)
        where = draw(st.sampled_from([b"{", b'"data":{']))
        if where in text and draw(st.booleans()):
            text = text.replace(where, where + pair + b",", 1)
        else:
            text = text.rstrip()[:-1] + b"," + pair + b"}"
    return text


def test_every_field_of_every_event_type_given_each_odd_value_or_left_out_reads_alike() -> None:
    for line in LINES:
        record = orjson.loads(line)
        for path in [path for path in _paths(record) if path]:
            for value in ODD_VALUES:
                _same(_dump(_set(orjson.loads(line), path, value), 0))
            _same(_dump(_drop(orjson.loads(line), path), 0))


def test_every_key_given_twice_reads_alike() -> None:
    """A repeated key, at the top or in "data", with its own value again or another, before or after."""
    for line in LINES:
        record = orjson.loads(line)
        for where, keys in ((b"{", list(record)), (b'"data":{', list(record["data"]))):
            for key in keys:
                value = record[key] if where == b"{" else record["data"][key]
                for again in (value, None, "x"):
                    pair = b'"' + key.encode() + b'":' + _dump(again, 0)
                    _same(line.replace(where, where + pair + b",", 1))
                    if where == b"{":
                        _same(line.rstrip()[:-1] + b"," + pair + b"}")
                    else:
                        _same(line.rstrip()[:-2] + b"," + pair + b"}}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_lines())
def test_mutated_lines_get_the_same_answer_from_both(line: bytes) -> None:
    _same(line)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_random_bytes_get_the_same_answer_from_both(line: bytes) -> None:
    _same(line)
