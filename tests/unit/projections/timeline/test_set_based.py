"""The timeline's set-based fold as text: one summary per event the handlers write an entry for, the white
space Python folds, and Spark can be given the same SQL."""

from __future__ import annotations

import re

import pytest
import sqlglot

from projections.timeline.handlers import TimelineReadModel
from projections.timeline.rows import TABLES as TIMELINE_TABLES
from projections.timeline.rows import one_line
from projections.timeline.set_based import _FOLDED, _WHITE, PORTABLE_STEPS, SUMMARIES, TABLES
from domain.campaign import Campaign


def test_every_event_with_an_entry_has_a_summary_and_every_table_a_step() -> None:
    entries = {cls.__qualname__ for cls in TimelineReadModel().handlers()} - {Campaign.Planned.__qualname__}
    assert set(SUMMARIES) == entries
    assert set(TABLES) == {table.name for table in TIMELINE_TABLES}


def test_the_white_space_class_is_what_python_splits_on() -> None:
    python = {chr(c) for c in range(0x110000) if chr(c).isspace()}
    pattern = re.compile(re.sub(r"\\x\{([0-9a-f]+)\}", lambda m: f"\\u{int(m.group(1), 16):04x}", _WHITE))  # RE2 → re
    assert {c for c in map(chr, range(0x3001)) if pattern.fullmatch(c)} == {c for c in python if ord(c) <= 0x3000}


def test_summaries_are_folded_exactly_when_python_would_change_them() -> None:
    """The fold replaces white space only in the summaries `_FOLDED` finds (≈ 1.4 µs an entry less); it must
    find every one `one_line` changes, in DuckDB's regular expressions (RE2)."""
    duckdb = pytest.importorskip("duckdb")
    texts = [f"a{chr(c)}b" for c in range(0x3001) if chr(c) not in "\x00"] + [
        " a", "a ", "a  b", "a b", "中文 摘要", "", "\u3000摘要", "a\u2029", "a \u00a0b", "x\u200by"]
    found = duckdb.connect().execute(f"SELECT t, regexp_matches(t, '{_FOLDED}') FROM unnest(?) AS u(t)",
                                     [texts]).fetchall()
    assert [t for t, matched in found if matched != (one_line(t) != t)] == []


@pytest.mark.parametrize(("name", "sql"), PORTABLE_STEPS)
def test_each_step_transpiles_to_spark(name: str, sql: str) -> None:
    spark = sqlglot.transpile(sql, read="duckdb", write="spark")[0]
    assert "ARRAY(" not in spark or "TRANSFORM" in spark, spark
