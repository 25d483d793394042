"""The timeline's set-based fold as text: one summary per event the handlers write an entry for, the white
space Python folds, and Spark can be given the same SQL."""

from __future__ import annotations

import re

import pytest
import sqlglot

from projections.timeline.handlers import TimelineReadModel
from projections.timeline.rows import TABLES as TIMELINE_TABLES
from projections.timeline.set_based import _WHITE, PORTABLE_STEPS, SUMMARIES, TABLES
from domain.campaign import Campaign


def test_every_event_with_an_entry_has_a_summary_and_every_table_a_step() -> None:
    entries = {cls.__qualname__ for cls in TimelineReadModel().handlers()} - {Campaign.Planned.__qualname__}
    assert set(SUMMARIES) == entries
    assert set(TABLES) == {table.name for table in TIMELINE_TABLES}


def test_the_white_space_class_is_what_python_splits_on() -> None:
    python = {chr(c) for c in range(0x110000) if chr(c).isspace()}
    pattern = re.compile(re.sub(r"\\x\{([0-9a-f]+)\}", lambda m: f"\\u{int(m.group(1), 16):04x}", _WHITE))  # RE2 → re
    assert {c for c in map(chr, range(0x3001)) if pattern.fullmatch(c)} == {c for c in python if ord(c) <= 0x3000}


@pytest.mark.parametrize(("name", "sql"), PORTABLE_STEPS)
def test_each_step_transpiles_to_spark(name: str, sql: str) -> None:
    spark = sqlglot.transpile(sql, read="duckdb", write="spark")[0]
    assert "ARRAY(" not in spark or "TRANSFORM" in spark, spark
