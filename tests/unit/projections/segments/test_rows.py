"""Each typed row of the segments read model has exactly its table's columns, in order (`Rows` fetches,
holds and writes the tuples as they are), and a superseded interval covers no instant."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from projections.segments.handlers import CUSTOMERS, DEALS, INTERVALS, SPANS, TOUCHES, SegmentsReadModel
from projections.segments.rows import CustomerRow, DealRow, IntervalRow, SpanRow, TouchRow, superseded
from projections.tables import Table

ROW_TYPES = [(CUSTOMERS, CustomerRow), (DEALS, DealRow), (SPANS, SpanRow), (TOUCHES, TouchRow),
             (INTERVALS, IntervalRow)]


@pytest.mark.parametrize(("table", "row_type"), ROW_TYPES, ids=[t.name for t, _ in ROW_TYPES])
def test_a_table_holds_rows_of_its_type_with_its_columns_in_order(table: Table, row_type: type[NamedTuple]) -> None:
    assert table.row_type is row_type
    assert row_type._fields == table.column_names


def test_every_table_has_a_row_type() -> None:
    assert {t for t, _ in ROW_TYPES} == set(SegmentsReadModel.tables)


def test_a_superseded_interval_is_the_empty_range_with_nothing_else() -> None:
    row = superseded("c1", 7)
    assert (row.customer_id, row.seq, row.valid_from, row.valid_to) == ("c1", 7, 0, 0)
    assert set(row[4:]) == {None}
