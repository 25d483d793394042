"""Smoke tests of the real PostgreSQL through psycopg 3, on a fresh database per test."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg

CHINESE = "上海某某科技有限公司 · 张三（销售总监）— 电话回访：客户很满意 👍"


def test_server_is_postgresql_14_or_newer_and_the_database_is_fresh(pg_database: str) -> None:
    with psycopg.connect(pg_database) as connection:
        server_version = connection.info.server_version
        version_num = int(connection.execute("SHOW server_version_num").fetchone()[0])
        database, tables = connection.execute(
            "SELECT current_database(), (SELECT array_agg(tablename::text ORDER BY tablename) FROM pg_tables "
            "WHERE schemaname = 'public')"
        ).fetchone()
        events = connection.execute("SELECT count(*) FROM crm_events").fetchone()[0]

    assert server_version >= 140000
    assert version_num >= 140000
    assert database == urlsplit(pg_database).path.lstrip("/") and database.startswith("crm_test_")
    assert (tables, events) == (["crm_command_receipts", "crm_events"], 0)  # only the empty log its owner set up


def test_chinese_text_round_trips_through_a_temp_table(pg_database: str) -> None:
    with psycopg.connect(pg_database) as connection:
        connection.execute("CREATE TEMP TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
        connection.execute("INSERT INTO notes (body) VALUES (%s)", (CHINESE,))
        body, characters, octets = connection.execute(
            "SELECT body, char_length(body), octet_length(body) FROM notes").fetchone()
        found = connection.execute("SELECT count(*) FROM notes WHERE body LIKE %s", ("%销售总监%",)).fetchone()[0]
        encoding = connection.execute("SHOW server_encoding").fetchone()[0]

    assert body == CHINESE
    assert (characters, octets) == (len(CHINESE), len(CHINESE.encode("utf-8")))
    assert found == 1
    assert encoding == "UTF8"
