"""`Rows.delete`: a row a batch deletes is gone when the rows are written (and reads as None before); a row
put again after its deletion stays."""

from __future__ import annotations

from projections.read_model import Rows
from projections.tables import Table
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

PAIRS = Table("pairs", (("a", "TEXT"), ("b", "INTEGER"), ("v", "TEXT")), ("a", "b"))


def test_a_deleted_row_is_gone_after_the_flush_and_one_put_again_stays() -> None:
    store = ReadModelStore(database_from_url("memory://"))
    with store.transaction() as cursor:
        for statement in PAIRS.ddl():
            cursor.execute(statement)
        rows = Rows(cursor, [PAIRS])
        for b in range(3):
            rows.put(PAIRS, {"a": "甲", "b": b, "v": "新"})
        rows.flush()
        rows.delete(PAIRS, "甲", 0)
        rows.delete(PAIRS, "甲", 1)
        rows.put(PAIRS, {"a": "甲", "b": 1, "v": "又"})
        rows.delete(PAIRS, "乙", 9)  # no such row: nothing happens
        assert rows.get(PAIRS, "甲", 0) is None
        rows.flush()
    assert store.query("SELECT a, b, v FROM pairs ORDER BY b") == [("甲", 1, "又"), ("甲", 2, "新")]
    store.close()
