"""Shared by the shard tests (unit on SQLite files, integration on PostgreSQL): the router with the default
pipelines, and which shards hold a record."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any
from uuid import UUID

from services.settings import Database
from services.sharding.router import ShardedApplication
from tests.conftest import at


@contextmanager
def sharded(shards: Sequence[Database]) -> Iterator[ShardedApplication]:
    """The router over `shards`, the default pipelines defined (so on every shard); closed after."""
    app = ShardedApplication(shards)
    try:
        app.ensure_default_pipelines(at(-30, "setup"))  # before any test's business time
        yield app
    finally:
        app.close()


@contextmanager
def migrated_shards(postgres_url: str, prefix: str = "crm_shard", count: int = 3) -> Iterator[list[Database]]:
    """`count` fresh databases on the test server, migrated by `crm db migrate`'s sharded path (logs, grants,
    shard map), dropped after."""
    from tests.support import running_services as services
    from services.sharding.migration import migrate_shards
    from services.settings import database_from_url

    with ExitStack() as stack:
        urls = [stack.enter_context(services.temporary_database(postgres_url, prefix, migrated=False))
                for _ in range(count)]
        databases = [database_from_url(url) for url in urls]
        migrate_shards(databases, [database_from_url(services.owner_url(url)) for url in urls])
        yield databases


def shards_holding(crm: ShardedApplication, record_id: Any) -> list[int]:
    """The shards whose log has events of this record (exactly one for a record; every one for reference data)."""
    return [i for i, app in enumerate(crm.apps) if list(app.events.get(UUID(str(record_id))))]
