"""The funnel's set-based fold as text: its rules agree with `steps`, and Spark can be given the same SQL."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
import sqlglot

from domain.lead import Lead
from domain.pipeline import Pipeline
from domain.ticket import Ticket
from projections.funnel import FUNNEL_EVENTS
from projections.funnel.set_based import _EVENTS, CHAINS, PORTABLE_STEPS, TABLES, pipeline_stages
from projections.funnel.rows import TABLES as FUNNEL_TABLES
from projections.funnel.steps import Move, funnel_steps


def _event(cls: type, **fields: Any) -> Any:
    event = object.__new__(cls)
    object.__setattr__(event, "__dict__", {"originator_id": uuid4(), **fields})
    return event


@pytest.mark.parametrize(("event", "kind"), [
    (_event(Lead.Assigned, owner="李娜"), "Lead"), (_event(Lead.Contacted), "Lead"),
    (_event(Ticket.StatusChanged, to_status="in_progress"), "Ticket")])
def test_a_conditional_move_is_allowed_out_of_the_stages_before_it_in_its_chain(event: Any, kind: str) -> None:
    move = next(step for step in funnel_steps(event) if isinstance(step, Move))
    chain = CHAINS[kind]
    assert move.only_from == chain[:chain.index(move.stage)]


def test_the_fold_reads_the_events_the_handlers_handle() -> None:
    assert set(_EVENTS) == {cls.__qualname__ for cls in (*FUNNEL_EVENTS, Pipeline.Defined, Pipeline.StageInserted)}
    assert set(TABLES) == {table.name for table in FUNNEL_TABLES}


@pytest.mark.parametrize(("name", "sql"), PORTABLE_STEPS)
def test_each_step_transpiles_to_spark(name: str, sql: str) -> None:
    spark = sqlglot.transpile(sql, read="duckdb", write="spark")[0]
    assert "ARRAY(" not in spark and "EPOCH" not in spark, spark  # DuckDB-only forms that Spark would refuse


def test_inserted_stages_count_from_their_insertion_and_keep_the_others_in_order() -> None:
    defined = '{"key": "sales", "stages": [{"key": "lead"}, {"key": "won_over"}]}'
    folded = pipeline_stages([(5, "p", "Defined", defined), (9, "p", "StageInserted", '{"stage": "x", "position": 1}')],
                             ["marketing"])
    levels = {(level.pipeline, level.stage): (level.level, level.since) for level in folded.levels}
    assert levels[("sales", "x")] == (1, 9) and levels[("sales", "won_over")] == (2, 5)
    assert levels[("sales", "won")] == (3, 0) and levels[("marketing", "captured")] == (0, 0)
    assert ("p", "sales", '["lead","x","won_over"]') in folded.rows
