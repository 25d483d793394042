"""Shared by the shard tests (unit on SQLite files, integration on PostgreSQL): the router with the default
pipelines, and which shards hold a record."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any
from uuid import UUID

from services.settings import Database
from services.sharding.router import ShardedApplication
from services.storage.read_model_store import ReadModelStore
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


def relay_every_shard(crm: ShardedApplication, store: ReadModelStore, bootstrap: str, topic: str) -> None:
    """Each shard's log published to `topic` by its own relay, to the partitions the shard owns (to the end)."""
    from gateways.kafka.relay import KafkaRelay, producer_for, relay_lag

    producer = producer_for(bootstrap)
    try:
        for shard, app in enumerate(crm.apps):
            owned = [p for p, owner in sorted(crm.shard_map.items()) if owner == shard]
            relay = KafkaRelay(app, store, producer, topic=topic, shard=shard, partitions=owned)
            while relay.run_batch():
                pass
            assert relay_lag(app, store, shard) == 0
    finally:
        producer.close()


def shards_holding(crm: ShardedApplication, record_id: Any) -> list[int]:
    """The shards whose log has events of this record (exactly one for a record; every one for reference data)."""
    return [i for i, app in enumerate(crm.apps) if list(app.events.get(UUID(str(record_id))))]
