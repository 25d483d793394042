"""Each typed row of the tickets read model has exactly its table's columns, in order (`Rows` fetches,
holds and writes the tuples as they are)."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from projections.tables import Table
from projections.tickets.handlers import DEALS, RATINGS, RESOLUTIONS, TICKETS, VERSIONS, WINS, TicketsReadModel
from projections.tickets.rows import DealRow, RatingRow, ResolutionRow, TicketRow, VersionRow, WinRow

ROW_TYPES = [(TICKETS, TicketRow), (VERSIONS, VersionRow), (RESOLUTIONS, ResolutionRow), (RATINGS, RatingRow),
             (DEALS, DealRow), (WINS, WinRow)]


@pytest.mark.parametrize(("table", "row_type"), ROW_TYPES, ids=[t.name for t, _ in ROW_TYPES])
def test_a_table_holds_rows_of_its_type_with_its_columns_in_order(table: Table, row_type: type[NamedTuple]) -> None:
    assert table.row_type is row_type
    assert row_type._fields == table.column_names


def test_every_table_has_a_row_type() -> None:
    assert {t for t, _ in ROW_TYPES} == set(TicketsReadModel.tables)
