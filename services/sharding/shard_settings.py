"""The shard settings: CRM_SHARD_URLS and CRM_SHARD_OWNER_URLS, comma-separated, the first is the default shard.

Unset (or blank): no sharding at all — the one database of CRM_DATABASE_URL, exactly as before (the embedded
SQLite default included). Set: one URL per shard, of the application role (PostgreSQL; SQLite files and
`memory://` work too, for tests and experiments); `CRM_SHARD_OWNER_URLS`, same order, the owner role's URLs
of the same databases, for `crm db migrate` only. A list that cannot be right — an empty item, a duplicate
database, owner URLs of other databases or of another length, kinds mixed — is refused before anything is
opened, saying which item: a shard listed twice would receive two shards' partitions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from services.settings import Database, SettingsError, database_from_url

SHARD_URLS_VARIABLE = "CRM_SHARD_URLS"
SHARD_OWNER_URLS_VARIABLE = "CRM_SHARD_OWNER_URLS"


def parse_shard_urls(text: str | None, variable: str = SHARD_URLS_VARIABLE) -> list[Database] | None:
    """The databases of a comma-separated list (None when `text` is unset or blank: no sharding)."""
    if text is None or not text.strip():
        return None
    items = [item.strip() for item in text.split(",")]
    for number, item in enumerate(items, 1):
        if not item:
            raise SettingsError(f"{variable}: item {number} of {len(items)} is empty (a stray comma?)")
    try:
        databases = [database_from_url(item) for item in items]
    except SettingsError as error:
        raise SettingsError(f"{variable}: {error}") from None
    _check_distinct(databases, variable)
    kinds = sorted({d.kind for d in databases})
    if len(kinds) > 1:
        raise SettingsError(f"{variable}: all shards must be of one kind, got {' and '.join(kinds)}")
    return databases


def _check_distinct(databases: list[Database], variable: str) -> None:
    seen: dict[tuple[str, ...], int] = {}
    for number, database in enumerate(databases, 1):
        where = database_identity(database)
        if where in seen:
            raise SettingsError(f"{variable}: shards {seen[where]} and {number} are the same database "
                                f"({database.url.split('@')[-1]}); each shard needs its own")
        seen[where] = number


def database_identity(database: Database) -> tuple[str, ...]:
    """What makes two URLs the same database, whoever logs in: host, port and name (or the file, or the URL)."""
    env = database.env
    if database.kind == "postgresql":
        return (database.kind, env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"])
    if database.kind == "sqlite":
        return (database.kind, os.path.abspath(env["SQLITE_DBNAME"]))
    return (database.kind, database.url)


def shards_from_environment(environ: Mapping[str, str] | None = None) -> list[Database] | None:
    """The shards (the default first), or None when CRM_SHARD_URLS is unset: one database as before."""
    return parse_shard_urls((os.environ if environ is None else environ).get(SHARD_URLS_VARIABLE))


def shard_owners_from_environment(shards: list[Database], environ: Mapping[str, str] | None = None) -> list[Database]:
    """The owner role's URL of each shard (CRM_SHARD_OWNER_URLS), same order and same databases."""
    owners = parse_shard_urls((os.environ if environ is None else environ).get(SHARD_OWNER_URLS_VARIABLE),
                              SHARD_OWNER_URLS_VARIABLE)
    if owners is None:
        raise SettingsError(f"set {SHARD_OWNER_URLS_VARIABLE} to the owner role's URL of each shard, in the order "
                            f"of {SHARD_URLS_VARIABLE} (deploy/postgres.sh shard-owner-urls prints them)")
    if len(owners) != len(shards):
        raise SettingsError(f"{SHARD_OWNER_URLS_VARIABLE} names {len(owners)} databases, {SHARD_URLS_VARIABLE} "
                            f"{len(shards)}: give the owner URL of each shard, in the same order")
    for number, (shard, owner) in enumerate(zip(shards, owners), 1):
        if database_identity(shard) != database_identity(owner):
            raise SettingsError(f"item {number} of {SHARD_OWNER_URLS_VARIABLE} is another database than item "
                                f"{number} of {SHARD_URLS_VARIABLE}: list the owner URLs in the same order")
    return owners
