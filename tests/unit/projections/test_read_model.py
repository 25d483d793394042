"""`Rows.delete`: a row a batch deletes is gone when the rows are written (and reads as None before); a row
put again after its deletion stays. `Rows.prefetch_prefixes`: a key of a prefix fetched whole is known absent."""

from __future__ import annotations

from projections.read_model import Rows
from projections.tables import Table
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore

PAIRS = Table("pairs", (("a", "TEXT"), ("b", "INTEGER"), ("v", "TEXT")), ("a", "b"))


def _pairs() -> ReadModelStore:
    store = ReadModelStore(database_from_url("memory://"))
    with store.transaction() as cursor:
        for statement in PAIRS.ddl():
            cursor.execute(statement)
    return store


def test_a_deleted_row_is_gone_after_the_flush_and_one_put_again_stays() -> None:
    store = _pairs()
    with store.transaction() as cursor:
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


class _Counting:
    """A cursor that counts the statements it runs."""

    def __init__(self, cursor) -> None:
        self.cursor, self.statements = cursor, 0

    def execute(self, sql, params=()):
        self.statements += 1
        return self.cursor.execute(sql, params)

    def __getattr__(self, name):
        return getattr(self.cursor, name)


def test_rows_fetched_by_key_prefix_make_a_missing_key_of_that_prefix_absent_without_a_query() -> None:
    store = _pairs()
    with store.transaction() as cursor:
        seed = Rows(cursor, [PAIRS])
        seed.put(PAIRS, {"a": "甲", "b": 1, "v": "旧"})
        seed.flush()
        counting = _Counting(cursor)
        rows = Rows(counting, [PAIRS])
        rows.prefetch_prefixes(PAIRS, [("甲",), ("乙",)])
        assert counting.statements == 1
        assert rows.get(PAIRS, "甲", 1)["v"] == "旧" and rows.get(PAIRS, "甲", 2) is None
        assert rows.get(PAIRS, "乙", 7) is None and counting.statements == 1  # known absent: no query
        assert rows.get(PAIRS, "丙", 1) is None and counting.statements == 2  # another prefix: looked up
        rows.put(PAIRS, {"a": "乙", "b": 7, "v": "新"})
        assert rows.get(PAIRS, "乙", 7)["v"] == "新"
        rows.flush()
        rows.trim(0)  # rows forgotten: the prefixes are no longer known whole
        assert rows.get(PAIRS, "甲", 1)["v"] == "旧" and counting.statements > 2
    store.close()
