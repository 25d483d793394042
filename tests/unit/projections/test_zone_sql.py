"""The local day SQL finds (SQLite, PostgreSQL's integer division; DuckDB's wall time) is `zoneinfo`'s, at any
instant of business time, in zones with DST, half-hour offsets and odd historic offsets."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import duckdb
from hypothesis import given, settings, strategies as st

from domain.base import EARLIEST
from domain.periods import day_number, zone_named
from projections.tables import micros
from projections.zone_sql import duckdb_local_date, local_day_sql

ZONES = ("UTC", "Asia/Shanghai", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "America/Havana",
         "Pacific/Kiritimati", "Asia/Kathmandu")
instants = st.datetimes(datetime(1900, 1, 2), datetime(2100, 1, 1), timezones=st.just(timezone.utc))


@settings(max_examples=300, deadline=None)
@given(instant=instants, zone=st.sampled_from(ZONES))
def test_sqlites_local_day_is_zoneinfos(instant: datetime, zone: str) -> None:
    tz = zone_named(zone)
    sql = local_day_sql("?", tz, EARLIEST, datetime(2100, 1, 2, tzinfo=timezone.utc)).replace("?", ":t")
    [(day,)] = sqlite3.connect(":memory:").execute(f"SELECT {sql}", {"t": micros(instant)}).fetchall()
    assert day == day_number(instant, tz)


def test_a_days_first_and_last_microsecond_are_that_day_around_a_dst_change() -> None:
    tz = zone_named("America/New_York")
    midnight = datetime(2026, 3, 8, tzinfo=tz).astimezone(timezone.utc)  # the day clocks go forward
    con = sqlite3.connect(":memory:")
    for instant in (midnight - timedelta(microseconds=1), midnight, midnight + timedelta(hours=23) - timedelta(
            microseconds=1), midnight + timedelta(hours=23)):
        sql = local_day_sql(str(micros(instant)), tz, midnight - timedelta(days=1), midnight + timedelta(days=2))
        [(day,)] = con.execute(f"SELECT {sql}").fetchall()
        assert day == day_number(instant, tz), instant


@settings(max_examples=40, deadline=None)
@given(instant=st.lists(instants, min_size=1, max_size=20), zone=st.sampled_from(ZONES))
def test_duckdbs_local_date_is_zoneinfos(instant: list[datetime], zone: str) -> None:
    tz = zone_named(zone)
    local = duckdb_local_date("t_us", tz, min(instant), max(instant) + timedelta(microseconds=1))
    con = duckdb.connect()
    con.execute("CREATE TABLE t (t_us BIGINT)")
    con.executemany("INSERT INTO t VALUES (?)", [(micros(i),) for i in instant])
    found = con.execute(f"SELECT t_us, date_diff('day', DATE '1970-01-01', CAST({local} AS DATE)) FROM t").fetchall()
    assert sorted(found) == sorted((micros(i), day_number(i, tz)) for i in instant)
