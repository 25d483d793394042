"""A table declared with a NamedTuple row type (`Table.row_type`) holds NamedTuples: `Rows` fetches, caches
and writes them as they are, keyed by their key columns; with a TypedDict its rows stay dicts; a type that
is not the table's columns, in order, is refused. Every read model declares one for every table."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, TypedDict

import pytest

from projections.read_model import ReadModel, Rows
from projections.campaigns import CampaignsReadModel
from projections.funnel import FunnelReadModel
from projections.segments import SegmentsReadModel
from projections.tables import Table
from projections.tickets import TicketsReadModel
from projections.timeline import TimelineReadModel


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


def test_a_typed_dict_row_type_keeps_dict_rows_of_exactly_the_columns() -> None:
    class StayDict(TypedDict):
        guest: str
        night: int
        room: str | None

    class NoRoom(TypedDict):
        guest: str
        night: int

    typed = Table("stays", STAYS.columns, STAYS.key, json_columns=("room",), row_type=StayDict)
    assert not typed.tuple_rows and typed.row_of(("张三", 1, "101")) == {"guest": "张三", "night": 1, "room": "101"}
    with pytest.raises(TypeError, match="not the columns of stays"):
        Table("stays", STAYS.columns, STAYS.key, row_type=NoRoom)


@pytest.mark.parametrize("model", [TicketsReadModel, SegmentsReadModel, CampaignsReadModel, FunnelReadModel,
                                   TimelineReadModel],
                         ids=lambda model: model.name)
def test_every_read_model_declares_the_row_type_of_every_table(model: type[ReadModel]) -> None:
    assert [t.name for t in model.tables if t.row_type is None] == []
