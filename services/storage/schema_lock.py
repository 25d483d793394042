"""DDL one process at a time: PostgreSQL refuses concurrent CREATE OR REPLACE of one object ("tuple concurrently
updated"), which processes starting together (rebuild jobs, serve workers creating their own tables) or a
`crm db migrate` during a start would run. Advisory locks need no privilege and are shared by all roles of a
database, so the owner's migration and the application's start queue on the same key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from services.settings import Database

SCHEMA_LOCK = 0x43524D5F5343484D  # a PostgreSQL advisory lock key ("CRM_SCHM")


@contextmanager
def advisory_lock(database: Database, key: int = SCHEMA_LOCK) -> Iterator[None]:
    """Hold the PostgreSQL session advisory lock `key` (on its own connection) for the block; elsewhere
    nothing: SQLite serialises DDL itself. Nest different keys in one fixed order only."""
    if database.kind != "postgresql":
        yield
        return
    import psycopg  # here: ≈ 0.1 s to import, which an SQLite log need not pay

    with psycopg.connect(database.url, autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (key,))
        yield  # closing the connection releases the lock
