"""Reports as flat tables and CSV: the text parses back to the same cells, missing stays missing."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from uuid import UUID

import pytest

from gateways.report_tables import UnknownTable, capped, csv_text, flat, funnel_tables, pick, table_csv


def test_nested_values_become_dotted_columns_and_lists_json_text() -> None:
    assert flat({"name": "春季展会", "totals": {"won": 1, "responses": {"click": 2}}, "tags": ["a", "b"]}) == {
        "name": "春季展会", "totals.won": 1, "totals.responses.click": 2, "tags": '["a","b"]'}


def test_csv_parses_back_with_empty_cells_for_missing_values() -> None:
    rows = [{"stage": "lead", "label": "潜在客户, \"Lead\"", "conversion": None, "note": "no decided items"},
            {"stage": "won", "label": "赢单\nWon", "conversion": 0.25, "extra": True}]

    parsed = list(csv.DictReader(io.StringIO(csv_text(rows))))

    assert parsed == [
        {"stage": "lead", "label": "潜在客户, \"Lead\"", "conversion": "", "note": "no decided items", "extra": ""},
        {"stage": "won", "label": "赢单\nWon", "conversion": "0.25", "note": "", "extra": "true"}]


def test_instants_and_ids_are_written_as_in_json() -> None:
    when = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
    item = UUID("00000000-0000-4000-8000-000000000001")

    [row] = csv.DictReader(io.StringIO(csv_text([{"at": when, "id": item}])))

    assert row == {"at": "2026-03-01T09:00:00+00:00", "id": str(item)}


def test_a_bom_only_when_asked_and_a_header_even_without_rows() -> None:
    assert csv_text([{"a": 1}], bom=True).startswith("\ufeffa\r\n")
    assert csv_text([], columns=("stage", "items")) == "stage,items\r\n"


def test_the_main_table_by_default_another_by_name_and_an_unknown_name_refused() -> None:
    tables = {"stages": [{"stage": "lead"}], "stuck": [{"item_id": "x"}]}

    assert pick(tables, None) == ("stages", [{"stage": "lead"}])
    assert table_csv(tables, "stuck") == "item_id\r\nx\r\n"
    with pytest.raises(UnknownTable, match="its tables are: stages, stuck"):
        pick(tables, "summary")


def test_the_funnel_gives_stages_stuck_and_a_summary_row() -> None:
    report = {"pipeline": "sales", "as_of": "2026-03-01T09:00:00+00:00", "rows": [{"stage": "lead"}],
              "stuck": [{"item_id": "x"}], "won": 0, "lost": 0, "win_rate": None,
              "win_rate_note": "no decided items", "stuck_total": 7}

    tables = funnel_tables(report)

    assert list(tables) == ["stages", "stuck", "summary"]
    assert tables["summary"] == [{"pipeline": "sales", "as_of": "2026-03-01T09:00:00+00:00", "won": 0, "lost": 0,
                                  "win_rate": None, "win_rate_note": "no decided items", "stuck_total": 7}]


def test_capped_lists() -> None:
    assert capped([3, 2, 1], 2) == [3, 2] and capped([3, 2, 1], None) == [3, 2, 1] and capped([], 5) == []
