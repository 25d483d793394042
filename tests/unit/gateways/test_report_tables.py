"""Reports as flat tables and CSV: the text parses back to the same cells, missing stays missing."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from uuid import UUID

import pytest

from gateways.report_tables import (UnknownTable, capped, csv_text, flat, funnel_tables, in_currency, pick, table_csv,
                                    with_external_ids)


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

    assert list(tables) == ["stages", "stuck", "summary", "unconverted"]
    assert tables["summary"] == [{"pipeline": "sales", "as_of": "2026-03-01T09:00:00+00:00", "won": 0, "lost": 0,
                                  "win_rate": None, "win_rate_note": "no decided items", "stuck_total": 7}]


def test_capped_lists() -> None:
    assert capped([3, 2, 1], 2) == [3, 2] and capped([3, 2, 1], None) == [3, 2, 1] and capped([], 5) == []


def test_money_cells_carry_their_currency_and_unconverted_amounts_stay_beside_them() -> None:
    report = {"pipeline": "sales", "as_of": "2026-03-01T09:00:00+00:00", "currency": "CNY",
              "rows": [{"stage": "proposal", "items": 1, "value_cents": 0, "unconverted": {"USD": 500000}}],
              "stuck": [], "won": 1, "lost": 0, "won_value_cents": 0, "won_unconverted": {"USD": 1250000},
              "unconverted": {"USD": 1750000}}

    tables = funnel_tables(report)
    [stage] = csv.DictReader(io.StringIO(table_csv(tables, "stages")))
    [summary] = csv.DictReader(io.StringIO(table_csv(tables, "summary")))

    assert list(stage) == ["stage", "items", "currency", "value_cents", "unconverted.USD"]
    assert (summary["currency"], summary["won_value_cents"], summary["won_unconverted.USD"]) == ("CNY", "0", "1250000")
    assert table_csv(tables, "unconverted") == "currency,cents\r\nUSD,1750000\r\n"
    assert table_csv({"unconverted": []}, "unconverted") == "currency,cents\r\n"


def test_a_currency_cell_goes_before_the_named_amount_or_last() -> None:
    assert list(in_currency([{"a": 1, "m": 2, "z": 3}], "CNY", "m")[0]) == ["a", "currency", "m", "z"]
    assert list(in_currency([{"a": 1}], "CNY", "m")[0]) == ["a", "currency"]
    assert in_currency([{"a": 1}], None) == [{"a": 1}]


def test_stuck_items_get_their_external_id_or_an_empty_one() -> None:
    known, unknown = UUID(int=1), UUID(int=2)
    report = {"stuck": [{"item_id": str(known)}, {"item_id": str(unknown)}]}

    assert [item["external_id"] for item in with_external_ids(report, {known: "salesforce:006B"})["stuck"]] == [
        "salesforce:006B", ""]
