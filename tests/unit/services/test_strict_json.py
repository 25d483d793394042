"""JSON naming a key twice is refused, however it is written; other JSON reads as orjson and json read it."""

from __future__ import annotations

import json

import orjson
import pytest

from services.strict_json import DuplicateKey, loads, loads_compact

REPEATS = [
    (b'{"a": 1, "a": 1}', "a"),
    (b'{"a":1,"b":{"c":[{"d":1,"d":2}]}}', "d"),
    (b'[{"x": 1}, {"y": 2, "y": 3}]', "y"),
    ('{"名字": "张三", "名字": "李四"}'.encode(), "名字"),
    (b'{"a": 1, "\\u0061": 2}', "a"),  # the same key, escaped
]


@pytest.mark.parametrize(("text", "key"), REPEATS)
def test_a_repeated_key_is_refused_naming_it(text: bytes, key: str) -> None:
    for read in (loads, loads_compact):
        with pytest.raises(DuplicateKey, match=f"the key {key!r} appears more than once in one JSON object"):
            read(text)


@pytest.mark.parametrize("value", [{"a": 1, "b": {"a": [1, {"a": None}]}, "名字": "张三"}, [], {}, "x", 1.5])
def test_json_without_repeats_reads_as_before_compact_or_not(value: object) -> None:
    for text in (orjson.dumps(value), orjson.dumps(value) + b"\n", json.dumps(value, indent=2).encode()):
        assert loads(text) == loads_compact(text) == orjson.loads(text)


def test_syntax_errors_stay_what_they_were() -> None:
    with pytest.raises(json.JSONDecodeError):
        loads(b'{"a": ')
    with pytest.raises(orjson.JSONDecodeError):
        loads_compact(b'{"a": ')
