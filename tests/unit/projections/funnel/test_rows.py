"""The band of a stay's length (`rows.length_band`) is the same in Python and in the SQL the bulk fold and any
database run (`length_band_sql`), at and around every band's edge."""

from __future__ import annotations

import sqlite3

import duckdb

from projections.funnel.rows import MAX_BAND, band_upper, length_band, length_band_sql

LENGTHS = sorted({0, 1, *(edge + d for band in range(MAX_BAND) for edge in [band_upper(band)] for d in (-1, 0, 1)),
                  2 ** 63 - 1})


def test_a_band_holds_the_lengths_below_its_upper_bound_and_at_least_the_one_before() -> None:
    for length in LENGTHS:
        band = length_band(length)
        assert 0 <= band <= MAX_BAND
        assert band == MAX_BAND or length < band_upper(band)
        assert band == 0 or length >= band_upper(band - 1)


def test_the_sql_band_equals_python_in_sqlite_and_duckdb() -> None:
    sql = f"SELECT x, {length_band_sql('x')} FROM t ORDER BY x"
    lite = sqlite3.connect(":memory:")
    lite.execute("CREATE TABLE t (x INTEGER)")
    lite.executemany("INSERT INTO t VALUES (?)", [(x,) for x in [*LENGTHS, None]])
    duck = duckdb.connect()
    duck.execute("CREATE TABLE t (x BIGINT)")
    duck.executemany("INSERT INTO t VALUES (?)", [(x,) for x in [*LENGTHS, None]])
    expected = [(x, length_band(x)) for x in LENGTHS]
    for found in (lite.execute(sql).fetchall(), duck.execute(sql).fetchall()):
        assert [row for row in found if row[0] is not None] == expected
        assert [row for row in found if row[0] is None] == [(None, None)]
