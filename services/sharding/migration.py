"""`crm db migrate` with CRM_SHARD_URLS set: every shard's log migrated by its owner exactly as the one
database's is (services/storage/log_migration.py: the application may only read and append), then the
partition → shard table created in the default shard (shard_map.create_map) and checked."""

from __future__ import annotations

from collections.abc import Sequence

from services.settings import Database
from services.sharding.shard_map import check_map, create_map
from services.storage.log_migration import Migrated, migrate_event_log


def migrate_shards(shards: Sequence[Database], owners: Sequence[Database],
                   app_role: str | None = None) -> tuple[list[Migrated], dict[int, int]]:
    """Migrate each shard as its owner for `app_role` (default: the role of the shard's URL); returns what
    each did and the shard map."""
    done = [migrate_event_log(owner, app_role or shard.role) for shard, owner in zip(shards, owners)]
    mapping = create_map(owners[0], len(shards), app_role or shards[0].role)
    return done, check_map(mapping, len(shards))
