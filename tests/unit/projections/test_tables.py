"""A table declared with a row type (`Table.row_type`) holds NamedTuples: `Rows` fetches, caches and writes
them as they are, keyed by their key columns; a type that is not the table's columns is refused. The
tickets, segments and campaigns read models declare one for every table."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import pytest

from projections.base import ReadModel, Rows
from projections.campaigns import CampaignsReadModel
from projections.segments import SegmentsReadModel
from projections.tables import Table
from projections.tickets import TicketsReadModel


class Stay(NamedTuple):
    guest: str
    night: int
    room: str | None


STAYS = Table("stays", (("guest", "TEXT"), ("night", "INTEGER"), ("room", "TEXT")), ("guest", "night"),
              row_type=Stay)


class _Cursor:
    """sqlite3's cursor with the `upsert` of `projections.ports.Cursor`."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(sql, params)

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def upsert(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(table.upsert_sql(), rows)


@pytest.fixture
def cursor() -> Iterator[_Cursor]:
    connection = sqlite3.connect(":memory:")
    cursor = _Cursor(connection.cursor())
    for statement in STAYS.ddl():
        cursor.execute(statement)
    yield cursor
    connection.close()


def test_typed_rows_are_written_fetched_and_keyed_as_they_are(cursor: _Cursor) -> None:
    rows = Rows(cursor, [STAYS])  # type: ignore[arg-type]
    rows.put(STAYS, Stay("张三", 1, "101"))
    rows.put(STAYS, Stay("张三", 2, None))
    assert rows.flush() == 2
    assert cursor.execute("SELECT guest, night, room FROM stays ORDER BY night").fetchall() == [
        ("张三", 1, "101"), ("张三", 2, None)]

    fresh = Rows(cursor, [STAYS])  # type: ignore[arg-type]
    fresh.prefetch(STAYS, [("张三", 1), ("张三", 2), ("李四", 1)])
    stay = fresh.get(STAYS, "张三", 2)
    assert isinstance(stay, Stay) and stay == Stay("张三", 2, None)
    assert fresh.get(STAYS, "李四", 1) is None
    fresh.put(STAYS, stay._replace(room="102"))
    fresh.flush()
    assert cursor.execute("SELECT room FROM stays WHERE night = 2").fetchall() == [("102",)]


def test_a_row_type_must_be_the_columns_in_order() -> None:
    class Swapped(NamedTuple):
        night: int
        guest: str
        room: str | None

    with pytest.raises(TypeError, match="Swapped's fields are not the columns of stays"):
        Table("stays", STAYS.columns, STAYS.key, row_type=Swapped)


def test_json_columns_stay_in_dict_rows() -> None:
    with pytest.raises(TypeError, match="JSON columns are held in dict rows"):
        Table("stays", STAYS.columns, STAYS.key, json_columns=("room",), row_type=Stay)


def test_a_table_without_a_row_type_keeps_dict_rows() -> None:
    plain = Table("stays", STAYS.columns, STAYS.key)
    row = plain.row_of(("张三", 1, "101"))
    assert row == {"guest": "张三", "night": 1, "room": "101"}
    assert plain.key_of(row) == ("张三", 1) and plain.row_values(row) == ("张三", 1, "101")


@pytest.mark.parametrize("model", [TicketsReadModel, SegmentsReadModel, CampaignsReadModel],
                         ids=lambda model: model.name)
def test_typed_read_models_declare_the_row_type_of_every_table(model: type[ReadModel]) -> None:
    untyped = [t.name for t in model.tables if t.row_type is None or t.row_type._fields != t.column_names]
    assert untyped == []
