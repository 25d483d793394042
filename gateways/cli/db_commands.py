"""`crm db migrate`: the event log's DDL, run by the role that owns it (see services/storage/log_migration.py)."""

from __future__ import annotations

from typing import Annotated

import psycopg
import typer

from gateways.cli.common import console, fail
from services.storage.log_migration import Migrated, migrate_event_log
from services.sharding.migration import migrate_shards
from services.sharding.shard_settings import shard_owners_from_environment, shards_from_environment
from services.sharding.shard_map import TABLE
from services.settings import SettingsError, database_from_environment, owner_database_from_environment

db_app = typer.Typer(help="The PostgreSQL event log's schema and roles.", no_args_is_help=True)


@db_app.command()
def migrate(
    app_role: Annotated[str | None, typer.Option(help="The application role to grant its share to "
                                                      "(default: the user of CRM_DATABASE_URL).")] = None,
) -> None:
    """Create or update the event log as its owner (CRM_DATABASE_OWNER_URL) and grant the application role
    only SELECT and INSERT on it; idempotent, run it on every deploy."""
    if shards_from_environment() is not None:
        migrate_every_shard(app_role)
        return
    try:
        owner = owner_database_from_environment()
        role = app_role or database_from_environment().role
        if role is None:
            raise SettingsError("name the application role: set CRM_DATABASE_URL to its PostgreSQL URL, "
                                "or pass --app-role")
        done = migrate_event_log(owner, role)
    except SettingsError as error:
        raise fail(str(error)) from None
    except psycopg.Error as error:
        raise fail(f"migration failed, nothing was granted: {error}".strip()) from None
    _report(done)


def _report(done: Migrated, where: str = "") -> None:
    for what in done.adopted:
        console.print(f"Took over {what} from {done.app_role}.")
    if done.moved:
        console.print(f"Moved {len(done.moved)} tables of {done.app_role} into its own schema {done.app_role}.")
    grantee = f"role {done.app_role} may only read and append" if done.app_role else "no separate application role"
    console.print(f"Event log {done.table}{where} is owned by {done.owner}; {grantee}.")


def migrate_every_shard(app_role: str | None) -> None:
    """CRM_SHARD_URLS set: every shard, each as its owner (CRM_SHARD_OWNER_URLS) for its application role,
    and the partition → shard table in the default shard."""
    try:
        shards = shards_from_environment() or []
        owners = shard_owners_from_environment(shards)
        done, mapping = migrate_shards(shards, owners, app_role)
    except SettingsError as error:
        raise fail(str(error)) from None
    except psycopg.Error as error:
        raise fail(f"migration failed: {error}".strip()) from None
    for number, migrated in enumerate(done):
        _report(migrated, f" of shard {number} ({shards[number].url.split('@')[-1]})")
    counts = [list(mapping.values()).count(shard) for shard in range(len(shards))]
    console.print(f"Partition → shard table {TABLE} in shard 0: {', '.join(map(str, counts))} partitions per shard.")
